import Foundation

/// How the learning rate changes with the step, given as a name (`"cosine"`) or an object
/// (`{"type": "step", "step_size": 1000, "gamma": 0.1}`).
public indirect enum ScheduleConfig: Equatable, Sendable {
    /// `lr` at every step.
    case constant
    /// `lr · gamma^⌊t / stepSize⌋` (PyTorch `StepLR`; `gamma` defaults to 0.1).
    case step(stepSize: Int, gamma: Float = 0.1)
    /// `minLR + (lr − minLR)·(1 + cos(π·t/T))/2` with `T = totalSteps` (nil: the run's total
    /// steps), held at `minLR` after `T` (PyTorch `CosineAnnealingLR` without restarts).
    case cosine(totalSteps: Int? = nil, minLR: Float = 0)
    /// Linear warm-up `lr·(t + 1)/warmupSteps` for `t < warmupSteps`, then `then` from its own step 0.
    case warmup(warmupSteps: Int, then: ScheduleConfig = .constant)

    /// The schedule `type` names, in the order error messages list them.
    public static let names = ["constant", "step", "cosine", "warmup"]

    /// The learning rate at step `t` (0-based: the number of updates already applied),
    /// for base rate `base` in a run of `totalSteps` updates.
    public func learningRate(atStep t: Int, base: Float, totalSteps: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            return base * Float(pow(Double(gamma), Double(t / stepSize)))
        case let .cosine(total, minLR):
            let horizon = max(1, total ?? totalSteps)
            let progress = Double(min(t, horizon)) / Double(horizon)
            return minLR + (base - minLR) * Float((1 + cos(Double.pi * progress)) / 2)
        case let .warmup(warmupSteps, then):
            if t < warmupSteps { return base * Float(t + 1) / Float(warmupSteps) }
            return then.learningRate(atStep: t - warmupSteps, base: base, totalSteps: max(1, totalSteps - warmupSteps))
        }
    }

    static func read(_ reader: ValueReader) throws -> ScheduleConfig {
        let type: String
        let object: ObjectReader?
        switch reader.value {
        case .string:
            type = try reader.name(kind: "schedule", names.map { ($0, $0) })
            object = nil
        case .object(let members):
            guard let typeValue = members.first(where: { $0.key == "type" })?.value else {
                throw ConfigError.missingKey(file: reader.file, path: reader.path, key: "type")
            }
            type = try reader.child("type", typeValue).name(kind: "schedule", names.map { ($0, $0) })
            let keys: [String: [String]] = [
                "constant": ["type"], "step": ["type", "step_size", "gamma"],
                "cosine": ["type", "total_steps", "min_lr"], "warmup": ["type", "warmup_steps", "then"],
            ]
            object = try reader.object(allowed: keys[type]!)
        default:
            throw reader.wrongType("a schedule name or an object with \"type\"")
        }
        func needs(_ key: String, _ example: String) throws -> ObjectReader {
            guard let object else {
                throw reader.invalid("the \(type) schedule needs \"\(key)\": \(example)")
            }
            return object
        }
        switch type {
        case "constant":
            return .constant
        case "step":
            let o = try needs("step_size", "{\"type\": \"step\", \"step_size\": 1000, \"gamma\": 0.1}")
            let gamma = try o.value("gamma", default: 0.1) { r -> Float in
                let g = try r.float()
                guard g > 0 else { throw r.outOfRange("must be > 0") }
                return g
            }
            return .step(stepSize: try o.required("step_size") { try $0.int(atLeast: 1) }, gamma: gamma)
        case "cosine":
            let minLR = try object?.value("min_lr", default: 0) { r -> Float in
                let m = try r.float()
                guard m >= 0 else { throw r.outOfRange("must be >= 0") }
                return m
            }
            return .cosine(totalSteps: try object?.optional("total_steps") { try $0.int(atLeast: 1) }, minLR: minLR ?? 0)
        case "warmup":
            let o = try needs("warmup_steps", "{\"type\": \"warmup\", \"warmup_steps\": 500, \"then\": \"cosine\"}")
            return .warmup(
                warmupSteps: try o.required("warmup_steps") { try $0.int(atLeast: 1) },
                then: try o.value("then", default: .constant, ScheduleConfig.read))
        default:
            fatalError("schedule \(type) passed the name check but has no reader")
        }
    }

    /// The canonical JSON form: always an object with every parameter written out.
    var json: JSONValue {
        switch self {
        case .constant:
            return .object([("type", .string("constant"))])
        case let .step(stepSize, gamma):
            return .object([("type", .string("step")), ("step_size", .int(stepSize)), ("gamma", .float(gamma))])
        case let .cosine(totalSteps, minLR):
            return .object([("type", .string("cosine")), ("total_steps", .optional(totalSteps, JSONValue.int)), ("min_lr", .float(minLR))])
        case let .warmup(warmupSteps, then):
            return .object([("type", .string("warmup")), ("warmup_steps", .int(warmupSteps)), ("then", then.json)])
        }
    }
}
