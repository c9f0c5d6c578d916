import pytest
import torch

from training.model import ColorNet, count_params, conv_flops


@pytest.mark.parametrize("hw", [(64, 64), (96, 128), (112, 112), (256, 256), (72, 40)])
def test_output_is_quarter_resolution(hw):
    for head, c in (("ce", 313), ("l2", 2)):
        m = ColorNet(head=head).eval()
        with torch.no_grad():
            y = m(torch.rand(2, 1, *hw) * 100)
        assert y.shape == (2, c, hw[0] // 4, hw[1] // 4)


def test_size_and_cost():
    m = ColorNet()
    n = count_params(m)
    assert 1.5e6 <= n <= 4e6
    assert conv_flops(m, 256, 256) < 12.0
