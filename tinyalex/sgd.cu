// One step of the paper's update rule (section 5) for one parameter array, in one pass:
//
//   v <- momentum * v - weight_decay * lr * w - lr * grad
//   w <- w + v
//
// tinyalex/sgd.py writes the same rule as four whole-array NumPy operations, each a pass
// over memory; here every element is read and written once. scalar_t is float or double
// (tinyalex/cuda.py); KERNEL_LOOP shares the elements out among GPU or CPU threads.
extern "C" __global__ void sgd_update(scalar_t* w, scalar_t* v, const scalar_t* grad, int count,
                                      scalar_t lr, scalar_t momentum, scalar_t weight_decay)
{
    KERNEL_LOOP(i, count) {
        scalar_t velocity = momentum * v[i] - weight_decay * lr * w[i] - lr * grad[i];
        v[i] = velocity;
        w[i] += velocity;
    }
}
