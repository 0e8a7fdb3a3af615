import Testing
@testable import TensorCore

/// Central finite differences against the tape's gradients.
///
/// The loss is Σ out ⊙ w for fixed random weights w, so every output element gets a distinct
/// upstream gradient. Each input element is perturbed by ±h; the numeric derivative
/// (L(x+h) − L(x−h)) / 2h is computed with the forward pass in Float32 and the difference
/// accumulated in Float64. Stated bound: |analytic − numeric| ≤ 2e-3 + 2e-2·max(|analytic|, |numeric|).
func checkGradients(
    _ inputs: [Tensor], h: Float = 1e-2, seed: UInt64 = 7,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ build: (Tape, [Tensor]) -> Tensor
) {
    for input in inputs { input.requiresGrad = true; input.clearGradient() }
    let tape = Tape()
    let out = build(tape, inputs)
    var rng = DeterministicRNG(seed)
    let weights = Tensor((0..<out.count).map { _ in rng.nextUnitFloat() * 2 - 1 }, shape: out.shape)
    let loss = tape.sumAll(tape.multiply(out, weights))
    tape.backward(loss)

    func evaluate() -> Double {
        let quiet = Tape(recording: false)
        let o = build(quiet, inputs)
        var total = 0.0
        for i in 0..<o.count { total += Double(o.data[i]) * Double(weights.data[i]) }
        return total
    }

    for (inputIndex, input) in inputs.enumerated() {
        let analytic = input.gradient ?? [Float](repeating: 0, count: input.count)
        for i in 0..<input.count {
            let original = input.data[i]
            input.data[i] = original + h
            let plus = evaluate()
            input.data[i] = original - h
            let minus = evaluate()
            input.data[i] = original
            let numeric = (plus - minus) / Double(2 * h)
            let a = Double(analytic[i])
            let bound = 2e-3 + 2e-2 * max(abs(a), abs(numeric))
            #expect(abs(a - numeric) <= bound,
                    "input \(inputIndex) element \(i): analytic \(a) vs numeric \(numeric)",
                    sourceLocation: sourceLocation)
        }
    }
}

/// Random values in ±scale, kept at least `margin` away from zero (away from ReLU kinks).
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, margin: Float = 0) -> Tensor {
    var rng = DeterministicRNG(seed, 99)
    let values: [Float] = (0..<shape.reduce(1, *)).map { _ in
        let v = (rng.nextUnitFloat() * 2 - 1) * scale
        return v >= 0 ? v + margin : v - margin
    }
    return Tensor(values, shape: shape)
}
