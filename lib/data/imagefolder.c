/* Image folders in torchvision ImageFolder's layout, as DiT's train.py reads ImageNet:
 * root/<class>/... with .jpg, .jpeg and .png files; classes are the sub-folders in sorted order, files
 * are walked in sorted order. Each sample is decoded when asked for and prepared with
 * ADM's center_crop_arr (Pillow-compatible resizing), then scaled to [-1, 1]. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../image/image.h"
#include "dataset.h"

typedef struct {
    char *dir, *name;
    int label;
} entry;

typedef struct {
    entry *items;
    size_t count, cap;
    size_t skipped;
} entry_list;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int by_dir_then_name(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->label != y->label) return x->label - y->label;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Sorted names of the entries of `dir` (without . and ..); NULL on error. */
static char **list_dir(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t cap = 64, k = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (k == cap) {
            char **more = realloc(names, (cap *= 2) * sizeof *names);
            if (!more) break;
            names = more;
        }
        names[k++] = strdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, k, sizeof *names, by_name);
    *n = k;
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int collect(entry_list *l, const char *dir, int label) {
    size_t n;
    char **names = list_dir(dir, &n);
    if (!names) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        if (is_dir(path)) {
            rc = collect(l, path, label);
        } else if (is_image(names[i])) {
            if (l->count == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 1024;
                entry *more = realloc(l->items, cap * sizeof *more);
                if (!more) rc = -1;
                else l->items = more, l->cap = cap;
            }
            if (!rc) {
                l->items[l->count] = (entry){strdup(dir), strdup(names[i]), label};
                if (!l->items[l->count].dir || !l->items[l->count].name) rc = -1;
                l->count++;
            }
        } else {
            l->skipped++;
        }
        free(path);
    }
    free_names(names, n);
    return rc;
}

sadm_status sadm_dataset_image_folder(const char *root, int image_size, sadm_dataset **out) {
    SADM_REQUIRE_PTR(root);
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE(image_size >= 8 && image_size <= 4096, "image folder %s: image size %d must lie in [8, 4096]", root, image_size);
    *out = NULL;
    if (!is_dir(root)) return sadm_error(SADM_ERR_IO, "image folder %s: not a folder", root);
    size_t nclasses;
    char **names = list_dir(root, &nclasses);
    if (!names) return sadm_error(SADM_ERR_IO, "image folder %s: cannot list it", root);
    entry_list l = {0};
    int classes = 0, rc = 0;
    char **class_names = calloc(nclasses ? nclasses : 1, sizeof *class_names);
    if (!class_names) rc = -1;
    for (size_t i = 0; i < nclasses && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        if (!is_dir(path)) continue;
        class_names[classes] = names[i], names[i] = NULL;
        rc = collect(&l, path, classes++);
    }
    free_names(names, nclasses);
    sadm_status st = SADM_OK;
    if (rc) st = sadm_error(SADM_ERR_IO, "image folder %s: cannot read it completely (out of memory or unreadable folder)", root);
    else if (classes == 0) st = sadm_error(SADM_ERR_FORMAT, "image folder %s: no class sub-folders (expected root/<class>/*.jpg)", root);
    else if (l.count == 0) st = sadm_error(SADM_ERR_FORMAT, "image folder %s: no .jpg, .jpeg or .png files in its %d class folders", root, classes);
    sadm_dataset *d = st ? NULL : sadm_dataset_alloc();
    if (!st && !d) st = sadm_error(SADM_ERR_NOMEM, "image folder %s: out of memory", root);
    if (!st) {
        qsort(l.items, l.count, sizeof *l.items, by_dir_then_name);
        d->kind = DATASET_IMAGES;
        d->n = l.count, d->channels = 3, d->size = image_size, d->classes = classes;
        d->class_names = class_names, class_names = NULL;
        d->paths = calloc(l.count, sizeof *d->paths);
        d->labels = malloc(l.count * sizeof *d->labels);
        if (!d->paths || !d->labels) st = sadm_error(SADM_ERR_NOMEM, "image folder %s: out of memory", root);
        for (size_t i = 0; !st && i < l.count; i++) {
            size_t len = strlen(l.items[i].dir) + strlen(l.items[i].name) + 2;
            if (!(d->paths[i] = malloc(len))) {
                st = sadm_error(SADM_ERR_NOMEM, "image folder %s: out of memory", root);
                break;
            }
            snprintf(d->paths[i], len, "%s/%s", l.items[i].dir, l.items[i].name);
            d->labels[i] = l.items[i].label;
        }
        d->skipped_files = l.skipped;
    }
    for (size_t i = 0; i < l.count; i++) free(l.items[i].dir), free(l.items[i].name);
    free(l.items);
    for (int k = 0; class_names && k < classes; k++) free(class_names[k]);
    free(class_names);
    if (st) {
        sadm_dataset_free(d);
        return st;
    }
    *out = d;
    return SADM_OK;
}

sadm_status dataset_get_image(const sadm_dataset *d, size_t i, int flip, float *x) {
    uint8_t *rgb = NULL, *crop = NULL;
    int w, h, S = d->size;
    sadm_status st = sadm_image_load_rgb(d->paths[i], &rgb, &w, &h);
    if (st) return st;
    crop = malloc((size_t)S * S * 3);
    if (!crop || sadm_center_crop_adm(rgb, w, h, S, crop)) {
        free(rgb), free(crop);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory while resizing", d->paths[i]);
    }
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < S; r++)
            for (int col = 0; col < S; col++) {
                int sc = flip ? S - 1 - col : col;
                x[((size_t)c * S + r) * S + col] = (float)crop[((size_t)r * S + sc) * 3 + c] / 127.5f - 1.0f;
            }
    free(rgb), free(crop);
    return SADM_OK;
}

const char *sadm_dataset_class_name(const sadm_dataset *d, int k) {
    return d && d->class_names && k >= 0 && k < d->classes ? d->class_names[k] : NULL;
}

const char *sadm_dataset_path(const sadm_dataset *d, size_t i) {
    return d && d->kind == DATASET_IMAGES && i < d->n ? d->paths[i] : NULL;
}

sadm_status sadm_image_files(const char *root, char ***paths, size_t *count) {
    *paths = NULL, *count = 0;
    if (!is_dir(root)) return sadm_error(SADM_ERR_IO, "image folder %s: not a folder", root);
    entry_list l = {0};
    int rc = collect(&l, root, 0);
    sadm_status st = SADM_OK;
    if (rc) st = sadm_error(SADM_ERR_IO, "image folder %s: cannot read it completely (out of memory or unreadable folder)", root);
    else if (l.count == 0) st = sadm_error(SADM_ERR_FORMAT, "image folder %s: no .jpg, .jpeg or .png files in it", root);
    char **p = st ? NULL : calloc(l.count, sizeof *p);
    if (!st && !p) st = sadm_error(SADM_ERR_NOMEM, "image folder %s: out of memory", root);
    if (!st) qsort(l.items, l.count, sizeof *l.items, by_dir_then_name);
    for (size_t i = 0; !st && i < l.count; i++) {
        size_t len = strlen(l.items[i].dir) + strlen(l.items[i].name) + 2;
        if (!(p[i] = malloc(len))) st = sadm_error(SADM_ERR_NOMEM, "image folder %s: out of memory", root);
        else snprintf(p[i], len, "%s/%s", l.items[i].dir, l.items[i].name);
    }
    for (size_t i = 0; i < l.count; i++) free(l.items[i].dir), free(l.items[i].name);
    free(l.items);
    if (st) {
        for (size_t i = 0; p && i < l.count; i++) free(p[i]);
        free(p);
        return st;
    }
    *paths = p, *count = l.count;
    return SADM_OK;
}
