/// A precondition that holds in release builds too: this module is built `-Ounchecked`, where
/// `precondition` tests nothing. For checks that stand between an input-derived value and
/// memory (docs/architecture.md, "Release-build safety"); inputs are validated where they enter,
/// so this is a last line that ends the process instead of reading or writing out of bounds.
@inline(__always)
func releaseCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}
