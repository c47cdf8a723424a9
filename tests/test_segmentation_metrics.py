"""mIoU and the customised mIoU on hand-computed label maps."""

import numpy as np
import pytest

from matgen.metrics.segmentation import iou_per_class, miou, miou_present_classes


def test_perfect_prediction_scores_one_and_absent_classes_are_nan():
    t = np.array([[0, 0, 1], [0, 1, 1]])
    iou = iou_per_class(t, t, 3)
    assert iou[:2].tolist() == [1.0, 1.0] and np.isnan(iou[2])
    assert miou(t, t, 3) == 1.0 and miou_present_classes(t, t, 3) == 1.0


def test_stray_pixels_of_an_absent_class_sink_miou_but_not_the_customised_miou():
    # target: classes 0 and 1 only (8 pixels each); prediction: one pixel of class 2
    t = np.array([[0, 0, 0, 0, 1, 1, 1, 1]] * 2)
    p = t.copy()
    p[0, 0] = 2
    iou = iou_per_class(p, t, 3)
    assert iou[0] == pytest.approx(7 / 8)  # |P0 ∩ T0| = 7, |P0 ∪ T0| = 8
    assert iou[1] == 1.0
    assert iou[2] == 0.0  # predicted only: union 1, intersection 0
    assert miou(p, t, 3) == pytest.approx((7 / 8 + 1 + 0) / 3)  # 0.625
    assert miou_present_classes(p, t, 3) == pytest.approx((7 / 8 + 1) / 2)  # 0.9375


def test_where_the_two_agree_missed_class_in_the_target_counts_in_both():
    t = np.array([[0, 0, 2, 2]])
    p = np.array([[0, 0, 0, 0]])  # class 2 of the target entirely missed
    assert iou_per_class(p, t, 3)[2] == 0.0
    assert miou(p, t, 3) == pytest.approx((0.5 + 0.0) / 2)
    assert miou_present_classes(p, t, 3) == pytest.approx((0.5 + 0.0) / 2)


def test_batches_average_images_and_ignore_index_drops_unlabelled_pixels():
    t = np.array([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
    p = np.array([[[0, 1], [1, 0]], [[0, 0], [0, 1]]])
    # image 0: IoU0 = 1/2, IoU1 = 2/3; image 1: IoU0 = 3/4, IoU1 = 0 (predicted only)
    assert miou(p, t, 2) == pytest.approx(((1 / 2 + 2 / 3) / 2 + (3 / 4 + 0) / 2) / 2)
    assert miou_present_classes(p, t, 2) == pytest.approx(((1 / 2 + 2 / 3) / 2 + 3 / 4) / 2)
    t_ign = t.copy()
    t_ign[0, 1, 1] = 255  # the wrongly predicted pixel is unlabelled: not scored
    assert iou_per_class(p[0], t_ign[0], 2, ignore_index=255).tolist() == [1.0, 1.0]
    assert np.isnan(miou_present_classes(p[0], np.full((2, 2), 255), 2, ignore_index=255))


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        miou(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="labels outside 0..1"):
        miou(np.full((2, 2), 3), np.zeros((2, 2)), 2)


def test_unet_is_fully_convolutional_and_learns_a_threshold():
    import torch

    from matgen.models.unet import UNet

    net = UNet(1, 2, width=4, depth=2, residual=True)
    assert net(torch.zeros(1, 1, 16, 24)).shape == (1, 2, 16, 24)
    with pytest.raises(ValueError, match="not a multiple of 4"):
        net(torch.zeros(1, 1, 10, 16))
    torch.manual_seed(0)
    x = torch.rand(8, 1, 16, 16)
    y = (x[:, 0] > 0.5).long()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(x).argmax(1).numpy()
    assert miou(pred, y.numpy(), 2) > 0.9
