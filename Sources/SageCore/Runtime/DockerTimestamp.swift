/// Reads the RFC 3339 timestamp `docker logs --timestamps` puts before each line
/// ("2026-11-22T21:10:42.437961947Z text") into wall-clock seconds and the rest of the line.
public func splitDockerTimestamp(_ line: String) -> (time: Double, text: String)? {
    let u = Array(line.utf8)
    func num(_ a: Int, _ n: Int) -> Int? {
        guard a + n <= u.count else { return nil }
        var v = 0
        for i in a..<a + n {
            guard u[i] >= 48 && u[i] <= 57 else { return nil }
            v = v * 10 + Int(u[i] - 48)
        }
        return v
    }
    guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58,
          let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
          let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2),
          (1...12).contains(month), (1...31).contains(day) else { return nil }
    var i = 19
    var fraction = 0.0
    if i < u.count && u[i] == 46 {
        i += 1
        var scale = 0.1
        while i < u.count, u[i] >= 48, u[i] <= 57 { fraction += Double(u[i] - 48) * scale; scale /= 10; i += 1 }
    }
    var offset = 0
    if i < u.count && u[i] == 90 {
        i += 1
    } else if i + 6 <= u.count, u[i] == 43 || u[i] == 45, let oh = num(i + 1, 2), u[i + 3] == 58, let om = num(i + 4, 2) {
        offset = (oh * 3600 + om * 60) * (u[i] == 45 ? -1 : 1)
        i += 6
    } else {
        return nil
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146097 + doe - 719468
    let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + second - offset) + fraction
    if i < u.count && u[i] == 32 { i += 1 }
    return (seconds, String(decoding: u[i...], as: UTF8.self))
}
