import Foundation

/// One layer of the model as the config describes it.
public struct LayerFact: Equatable, Sendable {
    /// Config path, e.g. `layers.1`.
    public var name: String
    /// Config type (`dense`, `conv2d`, `activation`, ...).
    public var kind: String
    /// Units or filters (0 for layers without).
    public var units: Int
    /// Activation name, if the layer has one.
    public var activation: String?

    /// Creates a layer fact.
    public init(name: String, kind: String, units: Int = 0, activation: String? = nil) {
        self.name = name; self.kind = kind; self.units = units; self.activation = activation
    }
}

/// What is known before step 1: the loss, the model's layers, the optimizer and the data.
public struct StaticFacts: Equatable, Sendable {
    /// `cross_entropy`, `mse` or `bce`.
    public var lossKind: String
    /// Output units per example.
    public var outputUnits: Int
    /// The activation applied to the output (a softmax layer last, say), if any.
    public var finalActivation: String?
    /// Layers in order (residual bodies flattened, with their full names).
    public var layers: [LayerFact]
    /// Classes in the training labels (`max + 1` for integer labels, 0 for regression targets).
    public var classCount: Int
    /// Training examples per class (empty for regression targets).
    public var labelHistogram: [Int]
    /// Whether every label is a non-negative integer.
    public var labelsAreIntegers: Bool
    /// Smallest, largest label and their standard deviation.
    public var labelMin: Double, labelMax: Double, labelStd: Double
    /// Non-finite labels and features in the training set.
    public var nonFiniteLabels: Int, nonFiniteFeatures: Int
    /// Feature statistics of the training set after normalization.
    public var featureMin: Double, featureMax: Double, featureMean: Double, featureStd: Double
    /// Feature columns constant over the training set, and the number of features.
    public var constantFeatures: Int, featureCount: Int
    /// Training examples.
    public var examples: Int
    /// Optimizer name, base learning rate and global clip norm.
    public var optimizer: String, learningRate: Double, clipNorm: Double?
    /// The `data.normalize` setting.
    public var normalization: String
    /// The feature with the widest range and that range over the median feature's (1: none stands out).
    public var widestFeature = 0, widestFeatureRatio = 1.0

    /// Creates static facts; defaults describe a balanced 10-class problem on standardized inputs.
    public init(lossKind: String = "cross_entropy", outputUnits: Int = 10, finalActivation: String? = nil, layers: [LayerFact] = [],
                classCount: Int = 10, labelHistogram: [Int]? = nil, labelsAreIntegers: Bool = true,
                labelMin: Double = 0, labelMax: Double = 9, labelStd: Double = 2.87, nonFiniteLabels: Int = 0, nonFiniteFeatures: Int = 0,
                featureMin: Double = -1, featureMax: Double = 2, featureMean: Double = 0, featureStd: Double = 1,
                constantFeatures: Int = 0, featureCount: Int = 784, examples: Int = 60000,
                optimizer: String = "adam", learningRate: Double = 0.001, clipNorm: Double? = nil, normalization: String = "standardize") {
        self.lossKind = lossKind; self.outputUnits = outputUnits; self.finalActivation = finalActivation; self.layers = layers
        self.classCount = classCount
        self.labelHistogram = labelHistogram ?? (classCount > 0 ? [Int](repeating: max(1, examples / classCount), count: classCount) : [])
        self.labelsAreIntegers = labelsAreIntegers; self.labelMin = labelMin; self.labelMax = labelMax; self.labelStd = labelStd
        self.nonFiniteLabels = nonFiniteLabels; self.nonFiniteFeatures = nonFiniteFeatures
        self.featureMin = featureMin; self.featureMax = featureMax; self.featureMean = featureMean; self.featureStd = featureStd
        self.constantFeatures = constantFeatures; self.featureCount = featureCount; self.examples = examples
        self.optimizer = optimizer; self.learningRate = learningRate; self.clipNorm = clipNorm; self.normalization = normalization
    }

    /// Whether the labels hold a single value.
    public var labelsAreConstant: Bool {
        if examples > 0 && labelMin == labelMax { return true }
        return labelHistogram.filter { $0 > 0 }.count == 1
    }

    /// Class probabilities of the training labels (empty for regression).
    public var labelPrior: [Double] {
        let total = Double(labelHistogram.reduce(0, +))
        return total > 0 ? labelHistogram.map { Double($0) / total } : []
    }

    /// The loss of the best constant predictor ("chance level"): the label entropy H for
    /// cross-entropy (log C for balanced classes), the mean binary entropy of the one-hot
    /// targets for BCE, their variance for MSE, the label variance for one-unit regression.
    public var chanceLoss: Double {
        let prior = labelPrior
        func binaryEntropy(_ p: Double) -> Double { p <= 0 || p >= 1 ? 0 : -(p * log(p) + (1 - p) * log(1 - p)) }
        switch lossKind {
        case "cross_entropy":
            if prior.isEmpty { return log(Double(max(outputUnits, 1))) }
            return prior.reduce(0) { $0 - ($1 > 0 ? $1 * log($1) : 0) }
        case "bce":
            if outputUnits == 1 {
                if labelsAreIntegers && labelMax <= 1, prior.count >= 2 { return binaryEntropy(prior[1]) }
                return labelStd * labelStd
            }
            guard !prior.isEmpty else { return log(2) }
            return prior.prefix(outputUnits).reduce(0) { $0 + binaryEntropy($1) } / Double(outputUnits)
        default:
            if outputUnits == 1 || prior.isEmpty { return labelStd * labelStd }
            return prior.prefix(outputUnits).reduce(0) { $0 + $1 * (1 - $1) } / Double(outputUnits)
        }
    }

    /// Classes the output must tell apart (the label classes for classification, else the output units).
    public var classesToSeparate: Int {
        if lossKind == "cross_entropy" { return max(classCount, outputUnits) }
        if outputUnits > 1 { return outputUnits }
        return labelsAreIntegers ? classCount : 0
    }

    /// Mean magnitude scale of the inputs: max(|mean|, std).
    public var inputScale: Double { max(abs(featureMean), featureStd) }
}
