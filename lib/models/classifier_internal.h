/* The classifier's passes on memory of its backend, for its training loop (the public
 * sadm_classifier_forward/backward take host memory and copy at the edges). */
#ifndef SADM_CLASSIFIER_INTERNAL_H
#define SADM_CLASSIFIER_INTERNAL_H

#include "params.h"

/* logits and features (either may be NULL) receive the outputs on the backend. */
sadm_status cls_forward_dev(sadm_classifier *c, int N, const float *x, float *logits, float *features);
sadm_status cls_backward_dev(sadm_classifier *c, const float *dlogits);

#endif
