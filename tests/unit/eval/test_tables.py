"""The evaluation table (eval/tables.py): the exact Table-1 layout in Markdown, CSV and JSON, with
and without the per-bucket pooled rows. Expected strings written by hand from the rows."""

import pytest

from pconv_jax.eval import tables


def test_table_layout_exact():
    rows = [
        {"bucket": 0, "border": False, "l1": 1.0, "psnr": 30.0, "ssim": 0.9, "hole_l1": 10.0},
        {"bucket": 0, "border": False, "l1": 2.0, "psnr": 20.0, "ssim": 0.8, "hole_l1": None},
        {"bucket": 5, "border": True, "l1": 6.0, "psnr": 15.0, "ssim": 0.5, "hole_l1": 12.5},
    ]
    for row, value in zip(rows, (0.1, 0.2, 0.4)):
        row["lpips"] = value
    table = tables.build_table(rows, notes=["a note"])
    na = " | ".join(["n/a"] * 10)
    expected_md = (
        "| metric | (0.01,0.1] N | (0.01,0.1] B | (0.1,0.2] N | (0.1,0.2] B | (0.2,0.3] N | "
        "(0.2,0.3] B | (0.3,0.4] N | (0.3,0.4] B | (0.4,0.5] N | (0.4,0.5] B | (0.5,0.6] N | "
        "(0.5,0.6] B | all |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| l1 (%) | 1.50 | {na} | 6.00 | 3.00 |\n"
        f"| PSNR (dB) | 25.00 | {na} | 15.00 | 21.67 |\n"
        f"| SSIM | 0.850 | {na} | 0.500 | 0.733 |\n"
        f"| hole-only l1 (%), not the paper's | 10.00 | {na} | 12.50 | 11.25 |\n"
        f"| LPIPS (AlexNet), lower is better | 0.150 | {na} | 0.400 | 0.233 |\n"
        "| pairs | 2 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 3 |\n"
        "\n- a note\n"
    )
    assert tables.to_markdown(table) == expected_md
    empty = "," * 10
    assert tables.to_csv(table) == (
        "metric,0N,0B,1N,1B,2N,2B,3N,3B,4N,4B,5N,5B,all\n"
        f"l1,1.5{empty},6.0,3.0\n"
        f"psnr,25.0{empty},15.0,21.666666666666668\n"
        f"ssim,0.8500000000000001{empty},0.5,0.7333333333333334\n"
        f"hole_l1,10.0{empty},12.5,11.25\n"
        f"lpips,0.15000000000000002{empty},0.4,0.23333333333333336\n"
        "pairs,2,0,0,0,0,0,0,0,0,0,0,1,3\n"
    )
    as_json = tables.to_json(table)
    assert as_json["pairs"]["0N"] == 2 and as_json["metrics"]["l1"]["values"]["1N"] is None
    assert as_json["column_titles"]["3B"] == "(0.3,0.4] B" and as_json["buckets"] is None
    with pytest.raises(ValueError, match="bucket 6"):
        tables.build_table([dict(rows[0], bucket=6)])
    # Rows written before LPIPS existed: left out of its mean, not an error.
    old = tables.build_table([{k: v for k, v in r.items() if k != "lpips"} for r in rows])
    assert old.rows[-1].values["all"] is None


def test_pooled_bucket_table_layout_exact():
    rows = [
        {"bucket": 0, "border": False, "l1": 1.0, "psnr": 30.0, "ssim": 0.9, "hole_l1": 1.0},
        {"bucket": 0, "border": True, "l1": 2.0, "psnr": 20.0, "ssim": 0.8, "hole_l1": 2.0},
        {"bucket": 2, "border": True, "l1": 6.0, "psnr": 15.0, "ssim": 0.5, "hole_l1": 3.0},
    ]
    fid = {"0": 12.5, "1": None, "2": None, "3": None, "4": None, "5": None, "all": 40.0}
    fid_row = tables.TableRow("fid", "FID", "{:.2f}", fid)
    table = tables.build_table(rows, bucket_rows=[fid_row])
    md = tables.to_markdown(table)
    assert md.endswith(
        "\nPer hole-ratio bucket, N and B pooled:\n\n"
        "| metric | (0.01,0.1] | (0.1,0.2] | (0.2,0.3] | (0.3,0.4] | (0.4,0.5] | (0.5,0.6] "
        "| all |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| FID | 12.50 | n/a | n/a | n/a | n/a | n/a | 40.00 |\n"
        "| pairs | 2 | 0 | 1 | 0 | 0 | 0 | 3 |\n"
    )
    assert tables.to_csv(table).endswith(
        "\n\nmetric,0,1,2,3,4,5,all\nfid,12.5,,,,,,40.0\npairs,2,0,1,0,0,0,3\n"
    )
    pooled = tables.to_json(table)["buckets"]
    assert pooled["pairs"]["0"] == 2 and pooled["metrics"]["fid"]["values"]["all"] == 40.0
