//! TensorFlow's "SAME" padding and the in-place ReLU6, shared by EfficientNet-Lite0 (`lite0`) and its
//! BatchNorm-folded copy (`folded`).

use tch::Tensor;

/// The padding the convolution itself applies: stride 1 with an odd kernel is symmetric, so the
/// conv pads itself (no extra copy); strided convs get their input padded by `same_input`.
pub(crate) fn same_conv_padding(k: i64, s: i64) -> i64 {
    if s == 1 { k / 2 } else { 0 }
}

/// The input of a TF "SAME" convolution: as is at stride 1, else padded with the odd extra pixel
/// bottom/right.
pub(crate) fn same_input(x: &Tensor, k: i64, s: i64) -> Tensor {
    if s == 1 {
        return x.shallow_clone();
    }
    let size = x.size();
    let (t, b) = same_pad(size[2], k, s);
    let (l, r) = same_pad(size[3], k, s);
    x.constant_pad_nd([l, r, t, b])
}

/// TF "SAME" padding (before, after) of one axis: the odd extra pixel goes last.
pub(crate) fn same_pad(len: i64, k: i64, s: i64) -> (i64, i64) {
    let out = (len + s - 1) / s;
    let total = ((out - 1) * s + k - len).max(0);
    (total / 2, total - total / 2)
}

/// ReLU6 in place. Every activation here follows a BatchNorm, whose backward pass needs its input, not
/// its output, and ReLU6's backward works from its own result: so the BatchNorm output need not be
/// kept beside the activation. That halves the activations a training step holds per block.
pub(crate) fn relu6(mut t: Tensor) -> Tensor {
    t.relu6_()
}
