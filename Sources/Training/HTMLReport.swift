import Cluster
import Foundation
import Signals

/// What report.html is made from: metrics.jsonl's rows, report.json, the test evaluations and
/// the run's config.
public struct HTMLReportInput {
    public var rows: [[String: Any]]
    public var report: [String: Any]
    public var evaluations: [(step: Int, loss: Double, accuracy: Double)]
    public var config: String

    public init(rows: [[String: Any]], report: [String: Any], evaluations: [(step: Int, loss: Double, accuracy: Double)] = [], config: String = "") {
        self.rows = rows; self.report = report; self.evaluations = evaluations; self.config = config
    }
}

/// Renders a run as one self-contained page (inline SVG and CSS, no script, no network), written
/// as well-formed XHTML so a test can parse it. Sections, each with an `id`: `verdict` (the
/// collapse verdict), `test` (test accuracy and loss per epoch), `training` (loss and training
/// accuracy on axes of their own, smoothed with the raw curve faint behind), `schedule`
/// (learning rate), `throughput` (samples/s), `gradients` (global and per-layer norms, log
/// scale), `monitor` (output variance per replica, dead and saturated fractions), `causes` and
/// `alerts`, `workers` (per-worker table), `cluster` and `timing` (tables), `summary`, `config`.
/// A collapse's onset (the verdict's step) is marked on every plot, and each alert at its step.
public func renderHTMLReport(_ input: HTMLReportInput) -> String {
    let rows = input.rows, report = input.report
    let collapse = report["collapse"] as? [String: Any] ?? [:]
    let alerts = report["alerts"] as? [[String: Any]] ?? []
    var markers = alerts.compactMap { alert -> Marker? in
        guard let step = number(alert["step"]) else { return nil }
        return Marker(step: step, color: (alert["severity"] as? String) == "critical" ? "#c0392b" : "#e67e22", label: nil)
    }
    if collapse["detected"] as? Bool == true, let onset = number(collapse["step"]) {
        markers.append(Marker(step: onset, color: "#8e0000", label: "collapse"))
    }
    func scalar(_ key: String) -> [(Double, Double)] {
        rows.compactMap { row in number(row["step"]).flatMap { s in number(row[key]).map { (s, $0) } } }
    }
    func family(_ key: String) -> [String: [(Double, Double)]] {
        var series: [String: [(Double, Double)]] = [:]
        for row in rows {
            guard let step = number(row["step"]), let values = row[key] as? [String: Any] else { continue }
            for (name, value) in values { if let v = number(value) { series[name, default: []].append((step, v)) } }
        }
        return series
    }

    var html = """
    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml"><head><meta charset="utf-8"/><title>Chorus training run</title><style>
    body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px;color:#222}
    h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
    table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:.9em}
    th{background:#f6f6f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
    .plots{display:flex;flex-wrap:wrap;gap:14px} .ok{color:#1e8449} .bad{color:#c0392b}
    pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em} svg text{font-size:11px;font-family:system-ui,sans-serif}
    </style></head><body><h1>Chorus training run</h1>
    """
    // Verdict first: what a reader looks for.
    html += "<section id=\"verdict\">"
    if collapse["detected"] as? Bool == true {
        html += "<p class=\"bad\"><b>Collapse detected</b> at step \(escape(text(collapse["step"]))): <b>\(escape(text(collapse["cause"])))</b>"
            + (collapse["replica"].flatMap { $0 is NSNull ? nil : " (replica \(escape(text($0))))" } ?? "") + "</p>"
    } else {
        html += "<p class=\"ok\"><b>No collapse detected.</b></p>"
    }
    html += "<p>" + [("status", report["status"]), ("steps", report["steps"]), ("test accuracy", report["test_accuracy"]),
                      ("samples/s", report["samples_per_s"]), ("params_sha256", report["params_sha256"])]
        .map { "\($0.0): <b>\(escape(text($0.1)))</b>" }.joined(separator: " · ") + "</p></section>"

    html += "<section id=\"test\"><h2>Test set, per epoch</h2><div class=\"plots\">"
    let tests = input.evaluations
    html += plot(title: "Test accuracy", series: [Series(name: "test accuracy", points: tests.map { (Double($0.step), $0.accuracy) }, dots: true)],
                 scale: .linear, markers: markers)
    html += plot(title: "Test loss", series: [Series(name: "test loss", points: tests.map { (Double($0.step), $0.loss) }, dots: true)],
                 scale: .log, markers: markers)
    html += "</div>"
    if !tests.isEmpty {
        html += "<table><tr><th>step</th><th>test loss</th><th>test accuracy</th></tr>"
            + tests.map { "<tr><td class=\"n\">\($0.step)</td><td class=\"n\">\(format($0.loss))</td><td class=\"n\">\(format($0.accuracy))</td></tr>" }.joined()
            + "</table>"
    }
    html += "</section>"

    html += "<section id=\"training\"><h2>Training loss and accuracy</h2><div class=\"plots\">"
    html += plot(title: "Training loss (log scale)", series: smoothed("loss", scalar("loss")), scale: .log, markers: markers)
    html += plot(title: "Training accuracy", series: smoothed("accuracy", scalar("accuracy")), scale: .linear, markers: markers)
    html += "</div></section>"

    html += "<section id=\"schedule\"><h2>Learning rate</h2><div class=\"plots\">"
    html += plot(title: "Learning rate applied", series: [Series(name: "lr", points: scalar("lr"))], scale: .linear, markers: markers)
    html += "</div></section>"

    html += "<section id=\"throughput\"><h2>Throughput</h2><div class=\"plots\">"
    html += plot(title: "Samples per second", series: smoothed("samples/s", scalar("samples_per_s")), scale: .linear, markers: markers)
    html += "</div></section>"

    html += "<section id=\"gradients\"><h2>Gradient norms</h2><div class=\"plots\">"
    var gradients = family("grad_norms").map { Series(name: $0.key, points: $0.value.sorted { $0.0 < $1.0 }) }.sorted { $0.name < $1.name }
    gradients.insert(Series(name: "global", points: scalar("grad_norm")), at: 0)
    html += plot(title: "Gradient norms before clipping (log scale)", series: gradients, scale: .log, markers: markers)
    html += "</div></section>"

    html += "<section id=\"monitor\"><h2>Collapse monitor signals</h2><div class=\"plots\">"
    let variance = family("output_variance").map { Series(name: "replica \($0.key)", points: $0.value.sorted { $0.0 < $1.0 }) }.sorted { $0.name < $1.name }
    html += plot(title: "Output variance per replica (log scale)", series: variance, scale: .log, markers: markers)
    let fractions = (family("dead_fraction").map { Series(name: "dead \($0.key)", points: $0.value.sorted { $0.0 < $1.0 }) }
        + family("saturation_fraction").map { Series(name: "saturated \($0.key)", points: $0.value.sorted { $0.0 < $1.0 }) }).sorted { $0.name < $1.name }
    html += plot(title: "Dead and saturated fractions", series: fractions, scale: .linear, markers: markers)
    html += "</div></section>"

    html += "<section id=\"causes\"><h2>Causes</h2>"
    if let causes = collapse["causes"] as? [[String: Any]], !causes.isEmpty {
        html += table(["cause", "confidence", "step", "evidence", "remedy"], causes.map { c in
            ["cause", "confidence", "step", "evidence", "remedy"].map { text(c[$0]) }
        })
    } else {
        html += "<p>None.</p>"
    }
    if let actions = collapse["actions"] as? [String], !actions.isEmpty {
        html += "<h2>What --monitor rollback did</h2><ul>" + actions.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
    }
    html += "</section><section id=\"alerts\"><h2>Alerts (\(alerts.count))</h2>"
    html += alerts.isEmpty ? "<p>None.</p>" : table(["step", "severity", "cause", "message"], alerts.map { a in
        ["step", "severity", "cause", "message"].map { text(a[$0]) }
    })
    html += "</section>"

    let cluster = report["cluster"] as? [String: Any]
    html += "<section id=\"workers\"><h2>Workers</h2>"
    if let workers = cluster?["workers"] as? [[String: Any]], !workers.isEmpty {
        html += table(["worker", "shards computed", "compute ms per shard", "waiting at step ends (ms)", "evictions"], workers.map { w in
            ["worker", "shards", "compute_ms_per_shard", "wait_ms", "evictions"].map { text(w[$0]) }
        }, numeric: true)
        html += "<p>Restarts of local worker processes: \(escape(text(cluster?["workers_restarted"]))) (a replaced process joins as a new worker).</p>"
    } else {
        html += "<p>In-process run: no workers.</p>"
    }
    html += "</section><section id=\"cluster\"><h2>Cluster</h2>"
    if let cluster {
        let scalars = cluster.keys.sorted().filter { !(cluster[$0] is [Any]) && !(cluster[$0] is [String: Any]) }
        html += table(["counter", "value"], scalars.map { [$0, text(cluster[$0])] })
        if let hosts = cluster["hosts"] as? [[String: Any]], !hosts.isEmpty {
            html += table(["host", "workers", "bytes sent", "bytes received"], hosts.map { h in ["host", "workers", "bytes_sent", "bytes_received"].map { text(h[$0]) } })
        }
        if let quarantined = cluster["quarantined"] as? [[String: Any]], !quarantined.isEmpty {
            html += "<p>Quarantined (a refereed audit proved them wrong):</p>"
            html += table(["worker", "step", "shard", "rewound to step"], quarantined.map { q in ["worker", "step", "shard", "rewound_to_step"].map { text(q[$0]) } })
        }
    } else {
        html += "<p>In-process run.</p>"
    }
    html += "</section><section id=\"timing\"><h2>Where the coordinator's time went (ms)</h2>"
    if let timing = report["timing_ms"] as? [String: Any] {
        html += table(["phase", "ms"], timing.keys.sorted().map { [$0, text(timing[$0])] }, numeric: true)
    } else {
        html += "<p>In-process run: update \(escape(text(report["update_ms_per_step"]))) ms per step.</p>"
    }
    html += "</section><section id=\"summary\"><h2>Summary</h2>"
    let skipped: Set<String> = ["collapse", "alerts", "cluster", "timing_ms"]
    html += table(["field", "value"], report.keys.sorted().filter { !skipped.contains($0) }.map { [$0, text(report[$0])] })
    html += "</section><section id=\"config\"><h2>Config</h2><pre>\(escape(input.config))</pre></section>"
    return html + "</body></html>\n"
}

// MARK: Plots

struct Series {
    var name: String
    var points: [(Double, Double)]
    var faint = false
    var dots = false
}

struct Marker {
    var step: Double
    var color: String
    var label: String?
}

enum PlotScale { case linear, log }

/// The raw curve, faint, and a debiased exponential moving average over it (TensorBoard's
/// smoothing: no lag from the first value), its weight from 0.6 (TensorBoard's default) up to
/// 0.95 as the curve grows longer.
func smoothed(_ name: String, _ points: [(Double, Double)]) -> [Series] {
    guard points.count > 5 else { return [Series(name: name, points: points)] }
    let weight = min(0.95, max(0.6, 1 - 30 / Double(points.count)))
    var average = 0.0, debias = 1.0
    let smooth = points.map { point -> (Double, Double) in
        guard point.1.isFinite else { return point }
        average = weight * average + (1 - weight) * point.1
        debias *= weight
        return (point.0, average / (1 - debias))
    }
    return [Series(name: "\(name) (raw)", points: points, faint: true), Series(name: "\(name) (smoothed)", points: smooth)]
}

/// Tick values and their labels: decades (0.01, 0.1, 1, 10), or 1-2-5 steps within one decade
/// on a log axis; "nice" 1-2-5 steps on a linear one.
func ticks(minimum: Double, maximum: Double, scale: PlotScale) -> [(value: Double, label: String)] {
    switch scale {
    case .log:
        let low = floor(log10(minimum)), high = ceil(log10(maximum))
        if high - low >= 3 {
            let stride = max(1, Int((high - low) / 5))
            return Swift.stride(from: Int(low), through: Int(high), by: stride).map { (pow(10, Double($0)), label(pow(10, Double($0)))) }
                .filter { $0.0 >= minimum / 1.0001 && $0.0 <= maximum * 1.0001 }
        }
        var result: [(Double, String)] = []
        for decade in Int(low)...Int(high) {
            for mantissa in [1.0, 2.0, 5.0] {
                let value = mantissa * pow(10, Double(decade))
                if value >= minimum / 1.0001 && value <= maximum * 1.0001 { result.append((value, label(value))) }
            }
        }
        // Within a narrow range (0.34…0.43, say): evenly spaced values, placed on the log axis.
        return result.count >= 3 ? result : ticks(minimum: minimum, maximum: maximum, scale: .linear)
    case .linear:
        let span = maximum - minimum
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var value = ceil(minimum / step) * step
        var result: [(Double, String)] = []
        while value <= maximum + step * 1e-9 {
            result.append((value, label(abs(value) < step * 1e-9 ? 0 : value)))
            value += step
        }
        return result
    }
}

/// 0.001, 0.1, 1, 250, 12k, 3M.
func label(_ value: Double) -> String {
    let magnitude = abs(value)
    if magnitude >= 1e6 { return String(format: "%gM", value / 1e6) }
    if magnitude >= 1e4 { return String(format: "%gk", value / 1e3) }
    if magnitude == 0 { return "0" }
    if magnitude < 1e-3 { return String(format: "%.0e", value) }
    return String(format: "%g", (value * 1e4).rounded() / 1e4)
}

private let palette = ["#2c7fb8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#17becf"]

/// One SVG line plot; non-finite values and (on a log axis) non-positive ones are skipped.
func plot(title: String, series: [Series], scale: PlotScale, markers: [Marker]) -> String {
    let width = 540.0, height = 250.0, left = 56.0, right = 12.0, top = 22.0, bottom = 30.0
    let transform: (Double) -> Double? = { v in
        guard v.isFinite else { return nil }
        switch scale {
        case .log: return v > 0 ? log10(v) : nil
        case .linear: return v
        }
    }
    let visible = series.filter { !$0.faint || series.count > 1 }
    let legend = visible.filter { !$0.faint }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 16 * Double((legend.count + 2) / 3)))\">"
    svg += "<text x=\"\(left)\" y=\"14\" font-weight=\"bold\">\(escape(title))</text>"
    let values = visible.flatMap(\.points).filter { transform($0.1) != nil }
    guard let minX = values.map(\.0).min(), let maxX = values.map(\.0).max(),
          var minV = values.map(\.1).min(), var maxV = values.map(\.1).max() else {
        return svg + "<text x=\"\(left)\" y=\"60\">no data</text></svg>"
    }
    if maxV - minV <= abs(maxV) * 1e-9 + 1e-12 {
        if scale == .log { minV /= 2; maxV *= 2 } else {
            let pad = max(abs(maxV) * 0.1, 1e-3)
            minV -= pad; maxV += pad
        }
    }
    let lowY = transform(minV)!, highY = transform(maxV)!
    let spanX = max(maxX - minX, 1)
    func x(_ v: Double) -> Double { left + (v - minX) / spanX * (width - left - right) }
    func y(_ v: Double) -> Double { top + (1 - (transform(v)! - lowY) / (highY - lowY)) * (height - top - bottom) }
    svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#999\"/>"
    for tick in ticks(minimum: minV, maximum: maxV, scale: scale) {
        let ty = y(tick.value)
        svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(f(ty))\" y2=\"\(f(ty))\" stroke=\"#eee\"/>"
        svg += "<text x=\"\(left - 4)\" y=\"\(f(ty + 4))\" text-anchor=\"end\">\(escape(tick.label))</text>"
    }
    for marker in markers where marker.step >= minX && marker.step <= maxX {
        svg += "<line x1=\"\(f(x(marker.step)))\" x2=\"\(f(x(marker.step)))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"\(marker.color)\""
            + (marker.label == nil ? " stroke-dasharray=\"4 3\"" : " stroke-width=\"2\"") + "/>"
        if let text = marker.label { svg += "<text x=\"\(f(x(marker.step) + 3))\" y=\"\(top + 11)\" fill=\"\(marker.color)\">\(escape(text)) (step \(Int(marker.step)))</text>" }
    }
    svg += "<text x=\"\(left)\" y=\"\(height - 10)\">step \(Int(minX))</text><text x=\"\(width - right)\" y=\"\(height - 10)\" text-anchor=\"end\">step \(Int(maxX))</text>"
    var colorIndex = 0
    for entry in visible {
        let color = palette[colorIndex % palette.count]
        if !entry.faint { colorIndex += 1 }
        let rawColor = entry.faint ? palette[colorIndex % palette.count] : color
        let path = entry.points.filter { transform($0.1) != nil }.map { "\(f(x($0.0))),\(f(y($0.1)))" }
        if entry.dots || path.count == 1 {
            for point in path {
                let xy = point.split(separator: ",")
                svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color)\"/>"
            }
        }
        if path.count > 1 {
            svg += "<polyline fill=\"none\" stroke=\"\(rawColor)\" stroke-width=\"\(entry.faint ? "1" : "1.6")\""
                + (entry.faint ? " stroke-opacity=\"0.25\"" : "") + " points=\"\(path.joined(separator: " "))\"/>"
        }
    }
    for (i, entry) in legend.enumerated() {
        let lx = 10 + Double(i % 3) * 175, ly = height + 12 + Double(i / 3) * 16
        svg += "<rect x=\"\(lx)\" y=\"\(ly - 9)\" width=\"10\" height=\"10\" fill=\"\(palette[i % palette.count])\"/><text x=\"\(lx + 14)\" y=\"\(ly)\">\(escape(entry.name))</text>"
    }
    return svg + "</svg>"
}

private func f(_ value: Double) -> String { String(format: "%.1f", value) }

private func table(_ header: [String], _ rows: [[String]], numeric: Bool = false) -> String {
    "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
        + rows.map { row in
            "<tr>" + row.enumerated().map { index, cell in
                "<td\(numeric && index > 0 ? " class=\"n\"" : "")>\(escape(cell))</td>"
            }.joined() + "</tr>"
        }.joined() + "</table>"
}

private func format(_ value: Double) -> String { String(format: "%.4f", value) }

private func number(_ value: Any?) -> Double? {
    switch value {
    case let v as Double: return v
    case let v as Int: return Double(v)
    case let v as Float: return Double(v)
    case let v as NSNumber: return v.doubleValue
    default: return nil
    }
}

private func text(_ value: Any?) -> String {
    switch value {
    case nil, is NSNull: return "–"
    case let v as String: return v
    case let v as Bool: return v ? "yes" : "no"
    case let v as Double: return String(format: "%.6g", v)
    case let v as [String: Any]:
        return v.keys.sorted().map { "\($0): \(text(v[$0]))" }.joined(separator: ", ")
    case let v as [Any]: return v.map { text($0) }.joined(separator: ", ")
    default: return "\(value!)"
    }
}

private func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
