import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A per-parameter update rule over flat buffers (mlx-swift's shape: each optimizer writes
/// only its rule; the walk over parameters exists once, here, as a single loop over the flat
/// buffer). Semantics follow PyTorch's defaults so results can be compared with it.
public protocol UpdateRule {
    /// Named state buffers (each as long as the parameters), for checkpoints.
    var stateNames: [String] { get }
    /// Applies one update with learning rate `lr` at 1-based step `t`.
    func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, count: Int,
               state: [UnsafeMutablePointer<Float>], lr: Float, t: Int)
}

/// SGD: d = g + wd·p; v = μ·v + d; d = d + μ·v (Nesterov) or v; p −= lr·d.
public struct SGD: UpdateRule {
    public var momentum: Float, nesterov: Bool, weightDecay: Float
    public init(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }
    public var stateNames: [String] { momentum != 0 ? ["momentum_buffer"] : [] }
    public func apply(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>, count: Int,
                      state: [UnsafeMutablePointer<Float>], lr: Float, t: Int) {
        if momentum == 0 {
            for i in 0..<count { p[i] -= lr * (g[i] + weightDecay * p[i]) }
            return
        }
        let v = state[0], mu = momentum
        for i in 0..<count {
            let d = g[i] + weightDecay * p[i]
            v[i] = t == 1 ? d : mu * v[i] + d
            p[i] -= lr * (nesterov ? d + mu * v[i] : v[i])
        }
    }
}

/// Adam (Kingma & Ba 2015) with PyTorch's arithmetic, or AdamW (Loshchilov & Hutter 2019)
/// when `decoupled`: m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
/// p −= (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε). Adam adds wd·p to g; AdamW multiplies p by (1 − lr·wd).
public struct Adam: UpdateRule {
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool
    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay; self.decoupled = decoupled
    }
    public var stateNames: [String] { ["exp_avg", "exp_avg_sq"] }
    public func apply(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>, count: Int,
                      state: [UnsafeMutablePointer<Float>], lr: Float, t: Int) {
        let m = state[0], v = state[1]
        let b1 = beta1, b2 = beta2, eps = epsilon
        let correction1 = 1 - Float(pow(Double(b1), Double(t)))
        let correction2Root = Float((1 - pow(Double(b2), Double(t))).squareRoot())
        let stepSize = lr / correction1
        let shrink = decoupled ? 1 - lr * weightDecay : 1
        let l2: Float = decoupled ? 0 : weightDecay
        // Per element, in Float: d = g + l2·p; m = b1·m + (1−b1)·d; v = b2·v + ((1−b2)·d)·d;
        // p = p·shrink − (stepSize·m) / (√v / correction2Root + eps). In C, vectorized for the
        // CPU at load time (AVX-512, AVX2 or SSE) without contractions, so the result is the
        // same bits whatever the vector width (Sources/CKernels/adam.c; tested against this
        // expression in Swift).
        chorus_adam(p, g, m, v, count, b1, 1 - b1, b2, 1 - b2, l2, shrink, stepSize, correction2Root, eps)
    }
}

/// RMSprop (Hinton 2012; PyTorch's form): v = αv + (1−α)g²; p −= lr·g/(√v + ε), with optional momentum.
public struct RMSprop: UpdateRule {
    public var alpha: Float, epsilon: Float, momentum: Float, weightDecay: Float
    public init(alpha: Float = 0.99, epsilon: Float = 1e-8, momentum: Float = 0, weightDecay: Float = 0) {
        self.alpha = alpha; self.epsilon = epsilon; self.momentum = momentum; self.weightDecay = weightDecay
    }
    public var stateNames: [String] { momentum != 0 ? ["square_avg", "momentum_buffer"] : ["square_avg"] }
    public func apply(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>, count: Int,
                      state: [UnsafeMutablePointer<Float>], lr: Float, t: Int) {
        let v = state[0], a = alpha, eps = epsilon
        for i in 0..<count {
            let d = g[i] + weightDecay * p[i]
            v[i] = a * v[i] + (1 - a) * d * d
            let step = d / (v[i].squareRoot() + eps)
            if momentum != 0 {
                let b = state[1]
                b[i] = momentum * b[i] + step
                p[i] -= lr * b[i]
            } else {
                p[i] -= lr * step
            }
        }
    }
}
