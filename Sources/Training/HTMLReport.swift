import Cluster
import Foundation
import Signals

/// Renders a run as one self-contained HTML page (inline SVG, no external assets): loss and
/// accuracy, global and per-layer gradient norms, output variance per replica, dead and
/// saturated fractions, each with markers at the alerts' steps; then the collapse verdict,
/// the alerts and the summary.
///
/// `metrics` are metrics.jsonl rows (`step`, `loss`, `accuracy`, `grad_norm`, and the monitor's
/// `grad_norms`, `output_variance`, `dead_fraction`, `saturation_fraction` dictionaries).
public func renderHTMLReport(title: String, metrics: [[String: Any]], alerts: [[String: Any]],
                             collapse: [String: Any], summary: [String: Any]) -> String {
    let markers = alerts.compactMap { alert -> (Double, String)? in
        guard let step = number(alert["step"]) else { return nil }
        return (step, (alert["severity"] as? String) == "critical" ? "#c0392b" : "#e67e22")
    }
    func scalar(_ key: String) -> [(Double, Double)] {
        metrics.compactMap { row in number(row["step"]).flatMap { s in number(row[key]).map { (s, $0) } } }
    }
    func family(_ key: String) -> [String: [(Double, Double)]] {
        var series: [String: [(Double, Double)]] = [:]
        for row in metrics {
            guard let step = number(row["step"]), let values = row[key] as? [String: Any] else { continue }
            for (name, value) in values { if let v = number(value) { series[name, default: []].append((step, v)) } }
        }
        return series
    }
    var plots: [String] = []
    var lossSeries = ["loss": scalar("loss")]
    if !scalar("accuracy").isEmpty { lossSeries["accuracy"] = scalar("accuracy") }
    plots.append(linePlot(title: "Loss and training accuracy", series: lossSeries, logScale: false, markers: markers))
    var gradients = family("grad_norms")
    gradients["global"] = scalar("grad_norm")
    plots.append(linePlot(title: "Gradient norms (log scale)", series: gradients, logScale: true, markers: markers))
    let variance = family("output_variance").reduce(into: [String: [(Double, Double)]]()) { $0["replica \($1.key)"] = $1.value }
    if !variance.isEmpty { plots.append(linePlot(title: "Output variance per replica (log scale)", series: variance, logScale: true, markers: markers)) }
    let dead = family("dead_fraction"), saturated = family("saturation_fraction")
    if !dead.isEmpty || !saturated.isEmpty {
        var fractions: [String: [(Double, Double)]] = [:]
        for (k, v) in dead { fractions["dead \(k)"] = v }
        for (k, v) in saturated { fractions["saturated \(k)"] = v }
        plots.append(linePlot(title: "Dead and saturated fractions", series: fractions, logScale: false, markers: markers))
    }

    var html = """
    <!DOCTYPE html><html><head><meta charset="utf-8"><title>\(escape(title))</title><style>
    body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
    h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.5em} table{border-collapse:collapse;margin:.5em 0}
    td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:.9em}
    .plots{display:flex;flex-wrap:wrap;gap:12px} .ok{color:#27ae60} .bad{color:#c0392b}
    svg text{font-size:11px}
    </style></head><body><h1>\(escape(title))</h1>
    """
    let detected = collapse["detected"] as? Bool ?? false
    html += detected
        ? "<p class=\"bad\"><b>Collapse detected</b> at step \(text(collapse["step"])): <b>\(text(collapse["cause"]))</b>"
            + (collapse["replica"].flatMap { $0 is NSNull ? nil : " (replica \(text($0)))" } ?? "") + "</p>"
        : "<p class=\"ok\"><b>No collapse detected.</b></p>"
    html += "<div class=\"plots\">" + plots.joined() + "</div>"
    if let causes = collapse["causes"] as? [[String: Any]], !causes.isEmpty {
        html += "<h2>Causes</h2><table><tr><th>cause</th><th>confidence</th><th>step</th><th>evidence</th><th>remedy</th></tr>"
        for c in causes {
            html += "<tr><td>\(escape(text(c["cause"])))</td><td>\(escape(text(c["confidence"])))</td><td>\(escape(text(c["step"])))</td>"
                + "<td>\(escape(text(c["evidence"])))</td><td>\(escape(text(c["remedy"])))</td></tr>"
        }
        html += "</table>"
    }
    if let actions = collapse["actions"] as? [String], !actions.isEmpty {
        html += "<h2>What --monitor rollback did</h2><ul>" + actions.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
    }
    html += "<h2>Alerts (\(alerts.count))</h2>"
    if !alerts.isEmpty {
        html += "<table><tr><th>step</th><th>severity</th><th>cause</th><th>message</th></tr>"
        for a in alerts {
            html += "<tr><td>\(escape(text(a["step"])))</td><td>\(escape(text(a["severity"])))</td>"
                + "<td>\(escape(text(a["cause"])))</td><td>\(escape(text(a["message"])))</td></tr>"
        }
        html += "</table>"
    }
    html += "<h2>Summary</h2><table>"
    for key in summary.keys.sorted() where key != "collapse" && key != "alerts" {
        html += "<tr><th>\(escape(key))</th><td>\(escape(text(summary[key])))</td></tr>"
    }
    return html + "</table></body></html>\n"
}

/// The Trainer's form: metrics rows and the report dictionary.
public func renderHTMLReport(rows: [[String: Any]], report: [String: Any], title: String = "Chorus training run") -> String {
    renderHTMLReport(title: title, metrics: rows, alerts: report["alerts"] as? [[String: Any]] ?? [],
                     collapse: report["collapse"] as? [String: Any] ?? [:], summary: report)
}

private let palette = ["#2c7fb8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#17becf"]

/// One SVG line plot; non-finite values and (in log scale) non-positive ones are skipped.
func linePlot(title: String, series: [String: [(Double, Double)]], logScale: Bool, markers: [(Double, String)]) -> String {
    let width = 520.0, height = 240.0, left = 52.0, right = 10.0, top = 22.0, bottom = 28.0
    let names = series.keys.sorted { a, b in a == "global" || a == "loss" ? true : (b == "global" || b == "loss" ? false : a < b) }
    let transform: (Double) -> Double? = { v in
        guard v.isFinite else { return nil }
        if logScale { return v > 0 ? log10(v) : nil }
        return v
    }
    let points = names.flatMap { series[$0]! }.compactMap { p in transform(p.1).map { (p.0, $0) } }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 16 * Double((names.count + 2) / 3)))\">"
    svg += "<text x=\"\(left)\" y=\"14\" font-weight=\"bold\">\(escape(title))</text>"
    guard let minX = points.map(\.0).min(), let maxX = points.map(\.0).max(),
          var minY = points.map(\.1).min(), var maxY = points.map(\.1).max() else {
        return svg + "<text x=\"\(left)\" y=\"60\">no data</text></svg>"
    }
    if maxY - minY < 1e-12 { minY -= 0.5; maxY += 0.5 }
    let spanX = max(maxX - minX, 1)
    func x(_ v: Double) -> Double { left + (v - minX) / spanX * (width - left - right) }
    func y(_ v: Double) -> Double { top + (1 - (v - minY) / (maxY - minY)) * (height - top - bottom) }
    svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#999\"/>"
    for (step, color) in markers where step >= minX && step <= maxX {
        svg += "<line x1=\"\(x(step))\" x2=\"\(x(step))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"\(color)\" stroke-dasharray=\"4 3\"/>"
    }
    for (i, value) in [minY, (minY + maxY) / 2, maxY].enumerated() {
        let label = logScale ? String(format: "1e%.1f", value) : String(format: "%.3g", value)
        svg += "<text x=\"2\" y=\"\(y(value) + 4)\">\(label)</text>"
        if i == 1 { svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#eee\"/>" }
    }
    svg += "<text x=\"\(left)\" y=\"\(height - 8)\">step \(Int(minX))</text><text x=\"\(width - right - 70)\" y=\"\(height - 8)\">step \(Int(maxX))</text>"
    for (i, name) in names.enumerated() {
        let color = palette[i % palette.count]
        let path = series[name]!.compactMap { p in transform(p.1).map { String(format: "%.1f,%.1f", x(p.0), y($0)) } }
        if path.count == 1 {
            let xy = path[0].split(separator: ",")
            svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2\" fill=\"\(color)\"/>"
        } else if !path.isEmpty {
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.3\" points=\"\(path.joined(separator: " "))\"/>"
        }
        let lx = 10 + Double(i % 3) * 170, ly = height + 12 + Double(i / 3) * 16
        svg += "<rect x=\"\(lx)\" y=\"\(ly - 9)\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text x=\"\(lx + 14)\" y=\"\(ly)\">\(escape(name))</text>"
    }
    return svg + "</svg>"
}

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
