import Foundation
import Testing
@testable import Config

// Each test checks the one-line message: the file, the key path and the offending value.

@Test func unknownActivationNamesThePathTheValueAndTheChoices() {
    let message = errorMessage(withLayers("""
        {"type": "dense", "units": 4}, {"type": "dense", "units": 4}, {"type": "dense", "units": 4, "activation": "rleu"}
        """))
    #expect(message?.hasPrefix(
        "config.json: model.layers[2].activation: unknown activation \"rleu\" (expected one of linear, relu, leaky_relu,") == true)
    #expect(message?.hasSuffix("did you mean \"relu\"?") == true)
}

@Test func unknownKeyNamesTheObjectAndSuggestsTheClosestKey() {
    let message = errorMessage("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 1}]}, "optimizer": {"lerning_rate": 0.1}}
        """)
    #expect(message?.hasPrefix("config.json: optimizer.lerning_rate: unknown key \"lerning_rate\" in optimizer (expected one of name, lr,") == true)
    #expect(message?.hasSuffix("; did you mean \"lr\"?") == true)
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"unit\": 4}"))?.contains("did you mean \"units\"?") == true)
}

@Test func unknownTopLevelKeyIsRejected() {
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"modle\": 1}")
        == "config.json: modle: unknown key \"modle\" in the top level (expected one of model, loss, optimizer, data, training, monitor); did you mean \"model\"?")
}

@Test func keysOfAnotherOptimizerAreRejected() {
    let message = errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"optimizer\": {\"name\": \"adam\", \"momentum\": 0.9}}")
    #expect(message?.hasPrefix("config.json: optimizer.momentum: unknown key \"momentum\" in optimizer") == true)
}

@Test func keysOfAnotherLayerTypeAreRejected() {
    #expect(errorMessage(withLayers("{\"type\": \"flatten\", \"units\": 3}"))?
        .hasPrefix("config.json: model.layers[0].units: unknown key \"units\" in model.layers[0] (expected one of type)") == true)
}

@Test func missingRequiredKeysAreNamed() {
    #expect(errorMessage("{}") == "config.json: model: missing required key \"model\" in the top level")
    #expect(errorMessage("{\"model\": {\"layers\": [{\"type\": \"flatten\"}]}}") == "config.json: model.input: missing required key \"input\" in model")
    #expect(errorMessage(withLayers("{\"type\": \"dense\"}")) == "config.json: model.layers[0].units: missing required key \"units\" in model.layers[0]")
    #expect(errorMessage(withLayers("{\"units\": 3}")) == "config.json: model.layers[0].type: missing required key \"type\" in model.layers[0]")
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 2, \"init\": {\"name\": \"constant\"}}"))
        == "config.json: model.layers[0].init.value: missing required key \"value\" in model.layers[0].init")
}

@Test func wrongJSONTypesAreNamedWithTheValueFound() {
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": \"many\"}"))
        == "config.json: model.layers[0].units: expected an integer, got a string (\"many\")")
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 2.5}"))
        == "config.json: model.layers[0].units: expected an integer, got a number (2.5)")
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 2, \"use_bias\": 1}"))
        == "config.json: model.layers[0].use_bias: expected true or false, got a number (1)")
    #expect(errorMessage("[1, 2]") == "config.json: (top level): expected an object, got an array")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": {}}}") == "config.json: model.layers: expected an array, got an object")
}

@Test func outOfRangeValuesAreRejected() {
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 0}"))
        == "config.json: model.layers[0].units: 0 is out of range: must be >= 1")
    #expect(errorMessage(withLayers("{\"type\": \"dropout\", \"rate\": 1.0}"))
        == "config.json: model.layers[0].rate: 1.0 is out of range: must be in [0, 1)")
    #expect(errorMessage(withLayers("{\"type\": \"conv2d\", \"filters\": 2, \"kernel\": 0}"))
        == "config.json: model.layers[0].kernel: 0 is out of range: must be >= 1")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"optimizer\": {\"lr\": -0.1}}")
        == "config.json: optimizer.lr: -0.1 is out of range: must be > 0")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"training\": {\"batch_size\": 0}}")
        == "config.json: training.batch_size: 0 is out of range: must be >= 1")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"optimizer\": {\"lr\": 1e39}}")
        == "config.json: optimizer.lr: 1e39 is out of range: must be a finite 32-bit float")
    #expect(errorMessage("{\"model\": {\"input\": [0], \"layers\": [{\"type\": \"flatten\"}]}}")
        == "config.json: model.input[0]: 0 is out of range: must be >= 1")
}

@Test func unknownNamesOfEveryKindAreRejected() {
    let base = "{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}"
    #expect(errorMessage(base + ", \"loss\": \"hinge\"}")?.hasPrefix("config.json: loss: unknown loss \"hinge\" (expected one of cross_entropy, mse, bce)") == true)
    #expect(errorMessage(base + ", \"optimizer\": {\"name\": \"adagrad\"}}")?.hasPrefix("config.json: optimizer.name: unknown optimizer \"adagrad\"") == true)
    #expect(errorMessage(base + ", \"data\": {\"name\": \"cifar10\"}}")?.hasPrefix("config.json: data.name: unknown data set \"cifar10\"") == true)
    #expect(errorMessage(base + ", \"monitor\": {\"policy\": \"panic\"}}")?.hasPrefix("config.json: monitor.policy: unknown monitor policy \"panic\"") == true)
    #expect(errorMessage(withLayers("{\"type\": \"dense2\"}"))?.hasPrefix("config.json: model.layers[0].type: unknown layer type \"dense2\"") == true)
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 1, \"init\": \"he\"}"))?
        .hasPrefix("config.json: model.layers[0].init: unknown initializer \"he\"") == true)
    #expect(errorMessage(withLayers("{\"type\": \"activation\", \"activation\": {\"type\": \"swish\"}}"))?
        .hasPrefix("config.json: model.layers[0].activation.type: unknown activation \"swish\"") == true)
}

@Test func duplicateKeysAreRejected() {
    #expect(errorMessage("{\"model\": {\"input\": [2], \"input\": [3], \"layers\": []}}")
        == "config.json: model.input: key \"input\" is given more than once")
}

@Test func invalidCombinationsAreExplained() {
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"optimizer\": {\"name\": \"sgd\", \"nesterov\": true}}")?
        .hasPrefix("config.json: optimizer.nesterov: nesterov needs a momentum > 0") == true)
    #expect(errorMessage("{\"model\": {\"input\": [2, 3], \"layers\": [{\"type\": \"flatten\"}]}}")
        == "config.json: model.input: expected [features] or [channels, height, width], got 2 dimensions")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": []}}") == "config.json: model.layers: a layer list needs at least one layer")
    #expect(errorMessage("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"flatten\"}]}, \"optimizer\": {\"schedule\": \"step\"}}")?
        .hasPrefix("config.json: optimizer.schedule: the step schedule needs \"step_size\"") == true)
}

@Test func invalidJSONReportsLineColumnAndReason() {
    #expect(errorMessage("{\n  \"model\": {\"input\": [2],}\n}") == "config.json: invalid JSON: line 2, column 26: expected a string key in double quotes")
    #expect(errorMessage("{\"model\": 01}") == "config.json: invalid JSON: line 1, column 12: leading zeros are not allowed in numbers")
    #expect(errorMessage("") == "config.json: invalid JSON: line 1, column 1: unexpected end of input (expected a value)")
    #expect(errorMessage("{} x") == "config.json: invalid JSON: line 1, column 4: unexpected text after the JSON document")
}

@Test func missingFileIsReportedWithItsPath() {
    do {
        _ = try RunConfig.load(path: "/nonexistent/chorus.json")
        Issue.record("loading a missing file succeeded")
    } catch let error as ConfigError {
        #expect(error.description == "/nonexistent/chorus.json: cannot read the config file: no such file")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

// Sizes multiply into allocations and batch indices in release builds without overflow checks:
// they are bounded where they are read.
@Test func sizesBeyondInt32AreRefusedNamingTheKey() {
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 3000000000}"))?
        .contains("model.layers[0].units") == true)
    #expect(errorMessage(withLayers("{\"type\": \"dense\", \"units\": 3000000000}"))?.contains("must be <= 2147483647") == true)
    #expect(errorMessage("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 1}]}, "training": {"batch_size": 9007199254740000}}
        """)?.contains("training.batch_size") == true)
}

@Test func anInputShapeWhoseProductWrapsIsRefused() {
    // 16 × 1152921504606847025 ≡ 784 (mod 2^64): it would pass a width check against 784 features.
    let message = errorMessage("""
        {"model": {"input": [16, 1152921504606847025, 1], "layers": [{"type": "flatten"}]}}
        """)
    #expect(message?.contains("model.input") == true, "\(message ?? "accepted")")
    #expect(errorMessage("""
        {"model": {"input": [65536, 65536, 2], "layers": [{"type": "flatten"}]}}
        """)?.contains("more than 2147483647 values per example") == true)
}
