"""Code lines of every .py under a folder: lines holding a token that is not a comment, a
docstring or blank (how issue 23 counts xnn/). Usage: python tools/code_lines.py xnn [--per-file]"""
import ast, io, sys, tokenize, pathlib

def code_lines(src: str) -> int:
    doc = set()
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type in skip:
            continue
        for ln in range(tok.start[0], tok.end[0] + 1):
            if ln not in doc:
                lines.add(ln)
    return len(lines)

root = pathlib.Path(sys.argv[1])
total = 0
for f in sorted(root.rglob("*.py")):
    n = code_lines(f.read_text())
    total += n
    if "--per-file" in sys.argv:
        print(f"{n:6d} {f}")
print(f"{total} code lines in {root}")
