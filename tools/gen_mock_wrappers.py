#!/usr/bin/env python3
"""Rewrites the generated part of tests/mock_backend.c from lib/backend.h's operator table:
one wrapper per entry (check the pointer arguments, open the memory, call the CPU entry,
close the memory), the table, and the list of entry names. Run it after adding an entry:
    tools/gen_mock_wrappers.py            (from the source tree's root)
"""
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
header = open(os.path.join(root, "lib", "backend.h")).read()
body = header[header.index("typedef struct sadm_ops {"):header.index("} sadm_ops;")]
body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
entries = re.findall(r"sadm_status \(\*(\w+)\)\((.*?)\);", body, flags=re.S)
out = ["/* BEGIN GENERATED WRAPPERS (tools/gen_mock_wrappers.py; do not edit by hand) */"]
out.append("static const char *const op_names[] = {" + ", ".join('"%s"' % n for n, _ in entries) + ", NULL};")
out.append("")
for name, params in entries:
    ps = [p.strip() for p in " ".join(params.split()).split(",")]
    decl, args = [], []
    for p in ps:
        m = re.match(r"(.*?)(\w+)$", p)
        typ, arg = m.group(1).strip(), m.group(2)
        decl.append(typ + arg if typ.endswith("*") else typ + " " + arg)
        args.append(arg)
    out.append("static sadm_status mock_%s(%s) {" % (name, ", ".join(decl)))
    out.append('    ENTER("%s");' % name)
    out.append("    " + " ".join("CHECK(%s);" % a for a in args))
    out.append("    return LEAVE(sadm_cpu_ops.%s(%s));" % (name, ", ".join(args)))
    out.append("}")
    out.append("")
out.append("static const sadm_ops mock_ops = {")
out += ["    .%s = mock_%s," % (n, n) for n, _ in entries]
out.append("};")
out.append("/* END GENERATED WRAPPERS */")
path = os.path.join(root, "tests", "mock_backend.c")
src = open(path).read()
a = src.index("/* BEGIN GENERATED WRAPPERS")
b = src.index("/* END GENERATED WRAPPERS */") + len("/* END GENERATED WRAPPERS */")
open(path, "w").write(src[:a] + "\n".join(out) + src[b:])
print("%s: %d entries" % (path, len(entries)), file=sys.stderr)
