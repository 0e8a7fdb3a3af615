/// Reverse-mode automatic differentiation by a tape (a Wengert list).
///
/// Every op is a method on `Tape`. It computes its output eagerly and, when recording and
/// some input requires a gradient, appends a closure that propagates the output's gradient to
/// the inputs. Ops are appended in creation order, which is a topological order, so
/// `backward` simply runs the closures in reverse (as micrograd does after its sort).
/// Gradients accumulate (`+=`), so a tensor used twice receives both contributions.
public final class Tape {
    /// Whether ops record their backward closures (false for evaluation).
    public var isRecording: Bool
    private var steps: [() -> Void] = []

    /// A tape; `recording: false` gives a pure forward pass with no bookkeeping.
    public init(recording: Bool = true) {
        isRecording = recording
    }

    /// Forgets every recorded step (the tensors they captured are released).
    public func reset() { steps.removeAll(keepingCapacity: true) }

    /// Records `backward` when any of `inputs` requires a gradient, marking `output` so.
    @inline(__always) func record(_ output: Tensor, _ inputs: [Tensor], _ backward: @escaping () -> Void) {
        guard isRecording, inputs.contains(where: { $0.requiresGrad }) else { return }
        output.requiresGrad = true
        steps.append(backward)
    }

    /// Propagates gradients from `output` (seeded with `seed`, default 1 for every element)
    /// back through every recorded op, then clears the tape.
    public func backward(_ output: Tensor, seed: Float = 1) {
        let g = output.gradientPointer()
        for index in 0..<output.count { g[index] += seed }
        for step in steps.reversed() { step() }
        steps.removeAll(keepingCapacity: true)
    }
}
