"""``mattezoo export --method NAME --format onnx --out FILE``: write a method's graph and check it with onnxruntime."""

from __future__ import annotations

from ..errors import InputError
from .predict_cmd import parse_options


def add_parser(sub):
    p = sub.add_parser("export", help="export a learned method to ONNX (checked against torch with onnxruntime)")
    p.add_argument("--method", required=True, help="a registered trimap-free learned method, e.g. p3m_net")
    p.add_argument("--checkpoint", help="weights file (or weight tag) to export with")
    p.add_argument("--format", default="onnx", help="output format; valid formats: onnx (default)")
    p.add_argument("--out", required=True, help="the file to write, e.g. p3m_net.onnx")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(512, 512),
                   help="input size of the graph, multiples of the method's input multiple (default: 512 512)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the example input (default: 1)")
    p.add_argument("--dynamic", action="store_true", help="leave batch, height and width free in the graph")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18, the oldest the unpooling allows)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the onnxruntime check")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. -o tfi=False (values are Python literals; repeatable)")
    return p


def run(args) -> int:
    from ..export import FORMATS, to_onnx

    if args.format not in FORMATS:
        raise InputError(f"unknown export format {args.format!r}; valid formats: {', '.join(FORMATS)}")
    report = to_onnx(
        args.method, args.out, checkpoint=args.checkpoint, size=tuple(args.size), batch=args.batch,
        dynamic=args.dynamic, opset=args.opset, verify=args.verify, **parse_options(args.option),
    )
    print(report.summary())
    return 0
