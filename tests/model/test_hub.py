import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from vbert.files import normal_dir_mode, normal_file_mode
from vbert.model import SequenceMergerConfig, SequenceMergerModel
from vbert.model.hub import export_hub

# Runs in a fresh interpreter in which every attempt to import vbert fails.
LOADER = textwrap.dedent(
    """
    import sys

    class BlockVbert:
        def find_spec(self, name, path=None, target=None):
            if name == "vbert" or name.startswith("vbert."):
                raise ImportError("vbert is blocked in this process")
            return None

    sys.meta_path.insert(0, BlockVbert())
    try:
        import vbert  # noqa: F401
        raise SystemExit("vbert is importable; the test would prove nothing")
    except ImportError:
        pass

    import numpy as np
    import torch
    from transformers import AutoModel

    folder, inputs, output = sys.argv[1:4]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert "vbert" not in sys.modules
    x = torch.from_numpy(np.load(inputs))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        np.save(output, model(x, attention_mask=mask).pooler_output.numpy())
    """
)


def test_export_loads_without_vbert_and_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = SequenceMergerModel(
        SequenceMergerConfig(
            d_model=32, num_layers=2, num_heads=4, ffn_dim=64, ppe_dim=4, residual_to_mean=False
        )
    ).eval()
    folder = export_hub(model, tmp_path / "export")
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_vbert.SequenceMergerModel"
    assert {"modeling_vbert.py", "configuration_vbert.py", "model.safetensors"} <= {
        p.name for p in folder.iterdir()
    }
    assert folder.stat().st_mode & 0o777 == normal_dir_mode()
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {normal_file_mode()}

    x = torch.nn.functional.normalize(torch.randn(2, 4, 32), dim=-1)
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    with torch.no_grad():
        expected = model(x, attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])).pooler_output.numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() <= 1e-5


def test_export_refuses_a_non_empty_destination(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    model = SequenceMergerModel(
        SequenceMergerConfig(d_model=32, num_layers=1, num_heads=4, ffn_dim=64, ppe_dim=4)
    )
    with pytest.raises(FileExistsError, match="not empty"):
        export_hub(model, tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
