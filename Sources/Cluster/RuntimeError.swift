/// Errors of the training runtime, each naming what to fix.
public enum RuntimeError: Error, CustomStringConvertible {
    case invalidSetting(String)
    case dataMismatch(String)
    case checkpoint(String)
    case cluster(String)
    case io(String)

    public var description: String {
        switch self {
        case .invalidSetting(let message), .dataMismatch(let message), .checkpoint(let message),
             .cluster(let message), .io(let message):
            return message
        }
    }
}
