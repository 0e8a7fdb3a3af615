/// Why a run configuration was rejected; every case names the file, the key path
/// (e.g. `model.layers[2].activation`) and the offending value.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The text is not valid JSON; `reason` carries the line, column and what was expected.
    case invalidJSON(file: String, reason: String)
    /// A key that is not part of the schema at `path`; `allowed` lists the valid keys there.
    case unknownKey(file: String, path: String, key: String, allowed: [String])
    /// A key given twice in the same object.
    case duplicateKey(file: String, path: String, key: String)
    /// A required key is absent from the object at `path`.
    case missingKey(file: String, path: String, key: String)
    /// The value at `path` has the wrong JSON type.
    case wrongType(file: String, path: String, expected: String, found: String)
    /// A name (activation, initializer, layer type, ...) that is not one of `allowed`.
    case unknownName(file: String, path: String, kind: String, value: String, allowed: [String])
    /// A value outside its valid range; `requirement` says what is accepted (e.g. "must be >= 1").
    case outOfRange(file: String, path: String, value: String, requirement: String)
    /// A combination of keys that is invalid (e.g. `nesterov` without `momentum`).
    case invalid(file: String, path: String, message: String)

    /// One line: `FILE: PATH: what is wrong`.
    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read the config file: \(reason)"
        case let .invalidJSON(file, reason):
            return "\(file): invalid JSON: \(reason)"
        case let .unknownKey(file, path, key, allowed):
            let parent = ConfigError.parent(of: path)
            return "\(file): \(path): unknown key \"\(key)\" in \(parent) (expected one of \(allowed.joined(separator: ", ")))"
                + ConfigError.suggestion(for: key, among: allowed)
        case let .duplicateKey(file, path, key):
            return "\(file): \(path): key \"\(key)\" is given more than once"
        case let .missingKey(file, path, key):
            let location = path.isEmpty ? "the top level" : path
            return "\(file): \(ConfigError.join(path, key)): missing required key \"\(key)\" in \(location)"
        case let .wrongType(file, path, expected, found):
            return "\(file): \(path.isEmpty ? "(top level)" : path): expected \(expected), got \(found)"
        case let .unknownName(file, path, kind, value, allowed):
            return "\(file): \(path): unknown \(kind) \"\(value)\" (expected one of \(allowed.joined(separator: ", ")))"
                + ConfigError.suggestion(for: value, among: allowed)
        case let .outOfRange(file, path, value, requirement):
            return "\(file): \(path): \(value) is out of range: \(requirement)"
        case let .invalid(file, path, message):
            return "\(file): \(path.isEmpty ? "(top level)" : path): \(message)"
        }
    }

    /// Spellings from other frameworks, mapped to this schema's key.
    private static let synonyms = [
        "learning_rate": "lr", "clipnorm": "clip_norm", "clipvalue": "clip_value", "decay": "weight_decay",
        "batchsize": "batch_size", "num_epochs": "epochs", "kernel_size": "kernel", "out_features": "units",
        "out_channels": "filters", "dropout": "rate", "pool_size": "size", "optim": "optimizer",
    ]

    private static func suggestion(for word: String, among allowed: [String]) -> String {
        var guess = closestMatch(to: word, among: allowed)
        if guess == nil, let synonym = closestMatch(to: word, among: Array(synonyms.keys)).flatMap({ synonyms[$0] }), allowed.contains(synonym) {
            guess = synonym
        }
        return guess.map { "; did you mean \"\($0)\"?" } ?? ""
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The object that holds the last component of `path` ("optimizer" for "optimizer.lerning_rate").
    private static func parent(of path: String) -> String {
        guard let dot = path.lastIndex(of: ".") else { return "the top level" }
        return String(path[..<dot])
    }
}

/// The candidate within edit distance 2 (or a third of the word) of `word`, if any.
func closestMatch(to word: String, among candidates: [String]) -> String? {
    let target = Array(word.lowercased())
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(target, Array(candidate.lowercased()))
        if distance <= max(2, target.count / 3), distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
    }
    return best?.name
}

/// Levenshtein distance, with a transposition of neighbours counted as one edit.
private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previousPrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], previousPrevious[j - 2] + 1)
            }
        }
        (previousPrevious, previous, current) = (previous, current, previousPrevious)
    }
    return previous[b.count]
}
