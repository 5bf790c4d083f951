# cython: language_level=3
"""Convolution as one matrix product: the patch matrix (im2col) and its adjoint (col2im).

Images are stored samples first, each sample's ``H x W x C`` entries flat in NHWC order (the
auxiliary variables' layout). For a kernel of ``k_h x k_w`` over ``C`` channels, stride ``s``
and zero padding ``p``, the patch matrix of a batch of ``n`` images has one row per (sample,
output position), ``n H_out W_out`` rows, and ``k_h k_w C`` columns ordered (kernel row, kernel
column, channel): the layout of a kernel ``W`` of shape (C_out, k_h, k_w, C_in) read as a
(C_out, k_h k_w C_in) matrix, so that ``Z = P(X) W_mat^T`` is one GEMM (shared/MATH.md,
"Convolution"). :func:`col2im` is the exact adjoint of :func:`im2col` (a scatter-add), the
back term's ``A^T R = col2im(R W_mat)``.

Both run without the GIL, in parallel over samples: a sample's rows of the patch matrix read
and write only that sample's image, so the threads never share an entry and the result does
not depend on their number.
"""
from cython cimport floating
from cython.parallel cimport prange


def output_size(int size, int kernel, int stride, int padding):
    """``(size + 2 padding - kernel) // stride + 1``: the output positions along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


cdef int _check(Py_ssize_t n_images, Py_ssize_t image_size, Py_ssize_t n_rows, Py_ssize_t row_size,
                int height, int width, int channels, int kernel_h, int kernel_w, int stride, int padding,
                int n_threads) except -1:
    if height < 1 or width < 1 or channels < 1:
        raise ValueError(f"height, width and channels must be >= 1, got {height}, {width}, {channels}")
    if kernel_h < 1 or kernel_w < 1:
        raise ValueError(f"kernel_h and kernel_w must be >= 1, got {kernel_h}, {kernel_w}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if kernel_h > height + 2 * padding or kernel_w > width + 2 * padding:
        raise ValueError(f"the kernel {kernel_h}x{kernel_w} is larger than the padded image "
                         f"{height + 2 * padding}x{width + 2 * padding}")
    if image_size != <Py_ssize_t>height * width * channels:
        raise ValueError(f"images must have {height * width * channels} entries (H W C), got {image_size}")
    cdef Py_ssize_t positions = output_size(height, kernel_h, stride, padding) * \
        output_size(width, kernel_w, stride, padding)
    if n_rows != n_images * positions or row_size != <Py_ssize_t>kernel_h * kernel_w * channels:
        raise ValueError(f"the patch matrix must have shape ({n_images * positions}, "
                         f"{kernel_h * kernel_w * channels}), got ({n_rows}, {row_size})")
    return 0


def im2col(const floating[:, ::1] images, floating[:, ::1] cols, int height, int width, int channels,
           int kernel_h, int kernel_w, int stride=1, int padding=0, int n_threads=1):
    """The patch matrix of ``images`` (n, H W C) into ``cols`` (n H_out W_out, k_h k_w C); zero
    where a patch reaches into the padding."""
    _check(images.shape[0], images.shape[1], cols.shape[0], cols.shape[1], height, width, channels,
           kernel_h, kernel_w, stride, padding, n_threads)
    cdef Py_ssize_t i, n = images.shape[0], positions = cols.shape[0] // n if n else 0
    if n == 0 or cols.shape[0] == 0:
        return
    cdef const floating* source = &images[0, 0]
    cdef floating* target = &cols[0, 0]
    cdef Py_ssize_t image_size = images.shape[1], row_size = cols.shape[1]
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            _im2col_image(source + i * image_size, target + i * positions * row_size, height, width, channels,
                          kernel_h, kernel_w, stride, padding)


def col2im(const floating[:, ::1] cols, floating[:, ::1] images, int height, int width, int channels,
           int kernel_h, int kernel_w, int stride=1, int padding=0, double alpha=1.0, int n_threads=1):
    """``images += alpha im2col^T(cols)``: every patch entry added back to the pixel it was read
    from (the padding's entries dropped)."""
    _check(images.shape[0], images.shape[1], cols.shape[0], cols.shape[1], height, width, channels,
           kernel_h, kernel_w, stride, padding, n_threads)
    cdef Py_ssize_t i, n = images.shape[0], positions = cols.shape[0] // n if n else 0
    if n == 0 or cols.shape[0] == 0:
        return
    cdef const floating* source = &cols[0, 0]
    cdef floating* target = &images[0, 0]
    cdef Py_ssize_t image_size = images.shape[1], row_size = cols.shape[1]
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            _col2im_image(source + i * positions * row_size, target + i * image_size, <floating>alpha, height,
                          width, channels, kernel_h, kernel_w, stride, padding)


cdef void _im2col_image(const floating* image, floating* cols, int height, int width, int channels, int kernel_h,
                        int kernel_w, int stride, int padding) noexcept nogil:
    """One image's rows of the patch matrix."""
    cdef int out_h = (height + 2 * padding - kernel_h) // stride + 1
    cdef int out_w = (width + 2 * padding - kernel_w) // stride + 1
    cdef int oh, ow, a, b, h, w, c
    cdef floating* entry = cols
    for oh in range(out_h):
        for ow in range(out_w):
            for a in range(kernel_h):
                h = oh * stride - padding + a
                for b in range(kernel_w):
                    w = ow * stride - padding + b
                    if 0 <= h < height and 0 <= w < width:
                        for c in range(channels):
                            entry[c] = image[(h * width + w) * channels + c]
                    else:
                        for c in range(channels):
                            entry[c] = 0
                    entry += channels


cdef void _col2im_image(const floating* cols, floating* image, floating alpha, int height, int width, int channels,
                        int kernel_h, int kernel_w, int stride, int padding) noexcept nogil:
    """One image's scatter-add of its rows of the patch matrix, in the order im2col reads them."""
    cdef int out_h = (height + 2 * padding - kernel_h) // stride + 1
    cdef int out_w = (width + 2 * padding - kernel_w) // stride + 1
    cdef int oh, ow, a, b, h, w, c
    cdef const floating* entry = cols
    for oh in range(out_h):
        for ow in range(out_w):
            for a in range(kernel_h):
                h = oh * stride - padding + a
                for b in range(kernel_w):
                    w = ow * stride - padding + b
                    if 0 <= h < height and 0 <= w < width:
                        for c in range(channels):
                            image[(h * width + w) * channels + c] += alpha * entry[c]
                    entry += channels


# ---------------------------------------------------------------- average pooling
# Non-overlapping ``size x size`` windows (stride = size), the remainder rows and columns of an
# image whose sides are not multiples of ``size`` dropped (PyTorch's ``avg_pool2d`` default).
# Pooling is linear, P P^T = I / size^2: the layer that reads a pooled image folds P into its
# operator (shared/MATH.md, "Average pooling").

cdef int _check_pool(Py_ssize_t n_images, Py_ssize_t image_size, Py_ssize_t n_pooled, Py_ssize_t pooled_size,
                     int height, int width, int channels, int size, int n_threads) except -1:
    if height < 1 or width < 1 or channels < 1:
        raise ValueError(f"height, width and channels must be >= 1, got {height}, {width}, {channels}")
    if size < 1 or size > height or size > width:
        raise ValueError(f"size must be between 1 and the image's sides ({height}, {width}), got {size}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if image_size != <Py_ssize_t>height * width * channels:
        raise ValueError(f"images must have {height * width * channels} entries (H W C), got {image_size}")
    if n_pooled != n_images or pooled_size != <Py_ssize_t>(height // size) * (width // size) * channels:
        raise ValueError(f"the pooled images must have shape ({n_images}, {(height // size) * (width // size) * channels}), "
                         f"got ({n_pooled}, {pooled_size})")
    return 0


def avg_pool(const floating[:, ::1] images, floating[:, ::1] pooled, int height, int width, int channels, int size,
             int n_threads=1):
    """``pooled`` (n, H/s W/s C): the mean of each ``size x size`` window of ``images`` (n, H W C)."""
    _check_pool(images.shape[0], images.shape[1], pooled.shape[0], pooled.shape[1], height, width, channels, size,
                n_threads)
    cdef Py_ssize_t i, n = images.shape[0]
    if n == 0:
        return
    cdef const floating* source = &images[0, 0]
    cdef floating* target = &pooled[0, 0]
    cdef Py_ssize_t image_size = images.shape[1], pooled_size = pooled.shape[1]
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            _pool_image(source + i * image_size, target + i * pooled_size, height, width, channels, size)


def avg_pool_adjoint(const floating[:, ::1] pooled, floating[:, ::1] images, int height, int width, int channels,
                     int size, double alpha=1.0, int n_threads=1):
    """``images += alpha P^T pooled``: each pooled entry spread back over its window, divided by
    ``size^2`` (the dropped remainder rows and columns receive nothing)."""
    _check_pool(images.shape[0], images.shape[1], pooled.shape[0], pooled.shape[1], height, width, channels, size,
                n_threads)
    cdef Py_ssize_t i, n = images.shape[0]
    if n == 0:
        return
    cdef const floating* source = &pooled[0, 0]
    cdef floating* target = &images[0, 0]
    cdef Py_ssize_t image_size = images.shape[1], pooled_size = pooled.shape[1]
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            _unpool_image(source + i * pooled_size, target + i * image_size, <floating>(alpha / (size * size)),
                          height, width, channels, size)


cdef void _pool_image(const floating* image, floating* pooled, int height, int width, int channels,
                      int size) noexcept nogil:
    cdef int out_h = height // size, out_w = width // size
    cdef int oh, ow, a, b, c
    cdef floating scale = 1.0 / (size * size)
    cdef const floating* pixel
    cdef floating* entry
    for oh in range(out_h):
        for ow in range(out_w):
            entry = pooled + (oh * out_w + ow) * channels
            for c in range(channels):
                entry[c] = 0
            for a in range(size):
                for b in range(size):
                    pixel = image + ((oh * size + a) * width + ow * size + b) * channels
                    for c in range(channels):
                        entry[c] += pixel[c]
            for c in range(channels):
                entry[c] *= scale


cdef void _unpool_image(const floating* pooled, floating* image, floating scale, int height, int width, int channels,
                        int size) noexcept nogil:
    cdef int out_h = height // size, out_w = width // size
    cdef int oh, ow, a, b, c
    cdef floating* pixel
    cdef const floating* entry
    for oh in range(out_h):
        for ow in range(out_w):
            entry = pooled + (oh * out_w + ow) * channels
            for a in range(size):
                for b in range(size):
                    pixel = image + ((oh * size + a) * width + ow * size + b) * channels
                    for c in range(channels):
                        pixel[c] += scale * entry[c]
