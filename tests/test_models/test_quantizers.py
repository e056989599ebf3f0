"""VectorQuantizer: lookup, losses, straight-through gradient, statistics, EMA, restarts."""
import pytest
import torch

from occworld4d.models.tokenizers.quantizers import VectorQuantizer
from occworld4d.registry import MODELS


def _two_code_quantizer(**kwargs):
    vq = VectorQuantizer(num_codes=2, code_dim=2, **kwargs)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    return vq


def _two_vectors():
    # (B=1, D=2, S=2): vector 0 = (0.2, 0.4) -> code 0 (dist 0.20 vs 1.00),
    # vector 1 = (0.9, 0.6) -> code 1 (dist 1.17 vs 0.17).
    return torch.tensor([[[0.2, 0.9], [0.4, 0.6]]], requires_grad=True)


def test_registered():
    vq = MODELS.build(dict(type='VectorQuantizer', num_codes=8, code_dim=4))
    assert isinstance(vq, VectorQuantizer)
    assert vq.codebook.shape == (8, 4)


def test_hand_example_indices_and_losses():
    vq = _two_code_quantizer(beta=0.25)
    z = _two_vectors()
    out = vq(z)
    assert out.indices.tolist() == [[0, 1]]
    assert torch.allclose(out.quantized, torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    # mean squared distance to the picked codes: (0.04 + 0.16 + 0.01 + 0.16) / 4 = 0.0925
    # loss = codebook term + beta * commitment = 0.0925 + 0.25 * 0.0925
    assert out.loss.item() == pytest.approx(0.0925 * 1.25, abs=1e-6)
    out.loss.backward()
    # d/dz of beta * mean((z - e)^2) = beta * 2 (z - e) / 4
    expect_z = 0.25 * 2 * torch.tensor([[[0.2, -0.1], [0.4, -0.4]]]) / 4
    assert torch.allclose(z.grad, expect_z, atol=1e-6)
    # d/dE of mean((e - z)^2): code 0 -> 2 (0 - (0.2, 0.4)) / 4, code 1 -> 2 (1 - (0.9, 0.6)) / 4
    expect_e = torch.tensor([[-0.1, -0.2], [0.05, 0.2]])
    assert torch.allclose(vq.embedding.weight.grad, expect_e, atol=1e-6)


def test_legacy_beta_moves_beta_to_codebook_term():
    vq = _two_code_quantizer(beta=0.25, legacy_beta=True)
    z = _two_vectors()
    out = vq(z)
    out.loss.backward()
    # commitment weight 1 now: d/dz = 2 (z - e) / 4
    expect_z = 2 * torch.tensor([[[0.2, -0.1], [0.4, -0.4]]]) / 4
    assert torch.allclose(z.grad, expect_z, atol=1e-6)
    assert torch.allclose(vq.embedding.weight.grad,
                          0.25 * torch.tensor([[-0.1, -0.2], [0.05, 0.2]]), atol=1e-6)


def test_straight_through_gradient():
    vq = VectorQuantizer(num_codes=16, code_dim=4)
    z = torch.randn(2, 4, 3, 5, requires_grad=True)
    out = vq(z)
    q = out.quantized
    q.retain_grad()
    weight = torch.randn_like(q)
    (q * weight).sum().backward()
    # d loss / d z equals d loss / d quantized (the VQ loss is not part of this loss).
    assert torch.equal(z.grad, q.grad)
    assert torch.equal(z.grad, weight)


def test_chunked_lookup_matches_brute_force():
    torch.manual_seed(1)
    vq = VectorQuantizer(num_codes=37, code_dim=5, chunk_size=7)
    with torch.no_grad():
        vq.embedding.weight.normal_()
    flat = torch.randn(100, 5)
    expect = torch.cdist(flat, vq.codebook.detach()).argmin(1)
    assert torch.equal(vq.lookup(flat), expect)


def test_lookup_is_fp32_under_bf16_autocast():
    torch.manual_seed(2)
    vq = VectorQuantizer(num_codes=64, code_dim=8)
    with torch.no_grad():
        vq.embedding.weight.normal_()
        vq.embedding.weight[1] = vq.embedding.weight[0] + 1e-3  # nearly tied codes
    flat = (vq.codebook.detach()[:2] + 1e-4 * torch.randn(2, 8)).bfloat16().float()
    expect = torch.cdist(flat, vq.codebook.detach()).argmin(1)
    assert expect.tolist() == [0, 1]  # a bf16 addmm would give [0, 0] here
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = vq.lookup(flat)
    assert torch.equal(got, expect)


def test_get_codebook_entry_round_trip():
    vq = VectorQuantizer(num_codes=16, code_dim=4)
    z = torch.randn(2, 4, 3, 2, 5)
    out = vq(z)
    assert out.indices.shape == (2, 3, 2, 5)
    # z + (e - z) equals e up to rounding
    assert torch.allclose(vq.get_codebook_entry(out.indices), out.quantized.detach(), atol=1e-6)
    with pytest.raises(ValueError, match='outside the codebook'):
        vq.get_codebook_entry(torch.tensor([[16]]))
    with pytest.raises(ValueError, match=r'\(B, 4, \.\.\.\)'):
        vq(torch.randn(2, 3, 5))


def test_perplexity_hand_examples():
    assert VectorQuantizer.perplexity(torch.tensor([2, 2, 0, 0])).item() == pytest.approx(2.0)
    assert VectorQuantizer.perplexity(torch.tensor([4, 0, 0, 0])).item() == pytest.approx(1.0)
    assert VectorQuantizer.perplexity(torch.tensor([1, 1, 1, 1])).item() == pytest.approx(4.0)


def test_dead_code_window_hand_example():
    vq = VectorQuantizer(num_codes=4, code_dim=1, dead_window=2)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[0.0], [10.0], [20.0], [30.0]]))
    vq.train()

    def step(values):  # (B=1, D=1, S=len(values))
        return vq(torch.tensor(values).view(1, 1, -1))

    assert step([0.0, 10.0]).dead_codes.item() == 0     # unused steps [0, 0, 1, 1]
    assert step([0.1]).dead_codes.item() == 2            # [0, 1, 2, 2]
    assert step([9.9]).dead_codes.item() == 2            # [1, 0, 3, 3]
    out = step([10.2, 10.1])                             # [2, 0, 4, 4]
    assert out.dead_codes.item() == 3
    assert out.perplexity.item() == pytest.approx(1.0)
    vq.eval()  # evaluation does not age the statistics
    assert step([30.0]).dead_codes.item() == 3
    assert vq.steps_unused.tolist() == [2, 0, 4, 4]


def test_dead_code_restart_reseeds_from_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=8, code_dim=3, dead_window=1, restart_dead=True)
    vq.train()
    z = torch.randn(1, 3, 6) + 100.0  # far from every code: one code picks all of them
    out = vq(z)
    used = out.indices.unique()
    assert used.numel() == 1
    rows = z[0].t()  # (6, 3)
    for k in range(8):
        if k in used:
            continue
        # every unused code is now one of the encoder outputs
        assert (vq.codebook[k] - rows).abs().sum(1).min().item() < 1e-6
    assert vq.dead_codes().item() == 0


def test_ema_update_moves_codes_to_cluster_means():
    vq = VectorQuantizer(num_codes=2, code_dim=2, ema=True, ema_decay=0.0, ema_eps=1e-9,
                         beta=0.25)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    vq.train()
    z = torch.tensor([[[0.2, 0.0, 0.9], [0.4, 0.2, 0.6]]], requires_grad=True)  # (1, 2, 3)
    out = vq(z)
    assert out.indices.tolist() == [[0, 0, 1]]
    assert torch.allclose(vq.codebook, torch.tensor([[0.1, 0.3], [0.9, 0.6]]), atol=1e-6)
    assert not vq.embedding.weight.requires_grad
    # EMA: loss = beta * commitment only (to the codes used in the forward pass)
    assert out.loss.item() == pytest.approx(0.25 * (0.04 + 0.16 + 0.04 + 0.01 + 0.16) / 6,
                                            abs=1e-6)


def _ddp_worker(rank, world_size, init_file, result_file):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size)
    torch.manual_seed(0)  # same initial codebook on both ranks
    vq = VectorQuantizer(num_codes=8, code_dim=3, ema=True, ema_decay=0.5, dead_window=1,
                         restart_dead=True)
    vq.train()
    torch.manual_seed(100 + rank)  # different data (and restart picks) per rank
    out = vq(torch.randn(1, 3, 5) + 10.0 * rank)
    torch.save(dict(codebook=vq.codebook.detach().clone(), steps=vq.steps_unused.clone(),
                    perplexity=out.perplexity), f'{result_file}.{rank}')
    dist.destroy_process_group()


def test_distributed_ranks_keep_the_same_codebook(tmp_path):
    import torch.multiprocessing as mp
    init_file, result = str(tmp_path / 'init'), str(tmp_path / 'res')
    mp.spawn(_ddp_worker, args=(2, init_file, result), nprocs=2, join=True)
    r0, r1 = (torch.load(f'{result}.{r}') for r in (0, 1))
    assert torch.equal(r0['codebook'], r1['codebook'])
    assert torch.equal(r0['steps'], r1['steps'])
    assert r0['perplexity'] == r1['perplexity']


def test_build_quantizer_defaults_and_width_check():
    from occworld4d.models.tokenizers.quantizers import build_quantizer
    q = build_quantizer(None, code_dim=16)
    assert (q.num_codes, q.code_dim, q.beta) == (512, 16, 1.0)
    q = build_quantizer(dict(num_codes=8), code_dim=4)  # own keys win over the defaults
    assert (q.num_codes, q.code_dim) == (8, 4)
    with pytest.raises(ValueError, match='code_dim 8 must equal the encoder width .* 4'):
        build_quantizer(dict(code_dim=8), code_dim=4)


def test_snap_is_a_pure_nearest_code_lookup():
    """snap: channel-first vectors -> nearest codes, with no statistics, EMA or restarts even
    in training mode; a wrong width is named."""
    q = VectorQuantizer(num_codes=3, code_dim=2, restart_dead=True, dead_window=1, ema=True)
    q.embedding.weight.data.copy_(torch.tensor([[0., 0.], [1., 0.], [0., 2.]]))
    state = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.tensor([[0.9, 0.1], [0.2, 1.5], [-0.1, 0.2]]).t().reshape(1, 2, 3)  # (B, D, S)
    snapped = q.train().snap(z)
    assert torch.equal(snapped, torch.tensor([[[1., 0., 0.], [0., 2., 0.]]]))
    for k, v in q.state_dict().items():
        assert torch.equal(v, state[k]), k
    with pytest.raises(ValueError, match=r'expects channel-first vectors \(B, 2'):
        q.snap(torch.zeros(1, 3, 4))
