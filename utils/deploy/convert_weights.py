"""``python -m utils.deploy.convert_weights SRC DST [--cfg space_depth_n.yaml | --spd]``: a YOLOv5-family
checkpoint into our format, executing nothing; optionally its weights moved exactly into an SPD graph."""

from __future__ import annotations

from models.loading import model_from_weights
from utils.checkpoints.files import load_checkpoint, model_payload, save_checkpoint
from utils.checkpoints.format import FORMAT
from utils.faces import run_face


def main(argv: list[str] | None = None) -> None:
    """``python -m utils.deploy.convert_weights SRC DST [--cfg space_depth_n.yaml | --spd]``: import a YOLOv5-family
    checkpoint into our format, optionally moving its weights exactly into the SPD form of its graph."""
    import argparse


    parser = argparse.ArgumentParser(description="Convert a YOLOv5-family checkpoint (pickled model objects) "
                                     "into a weights_only-loadable YOLOv5-SPD checkpoint, executing nothing; "
                                     "with --cfg or --spd, map its weights exactly into an SPD model.")
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--cfg", default="", help="target model config (e.g. space_depth_n.yaml)")
    parser.add_argument("--spd", action="store_true", help="target the SPD form of the source's own graph "
                        "(or of --cfg)")
    parser.add_argument("--partial", action="store_true", help="if the graphs cannot be mapped exactly, copy "
                        "the tensors that match by name and shape (not function-preserving)")
    print(f"wrote {run_face(_convert, parser.parse_args(argv))}")


def _convert(args):
    ckpt = load_checkpoint(args.source)
    if args.cfg or args.spd:
        model, report = model_from_weights(ckpt, args.cfg or None, spd=args.spd, allow_partial=args.partial)
        print(report.line(args.source))
        ckpt = {"format": FORMAT, "model": model_payload(model), "ema": None, "epoch": -1,
                "imported_from": str(args.source)}
    return save_checkpoint(ckpt, args.destination)



if __name__ == "__main__":
    main()
