import Foundation

/// The control socket speaks newline-delimited JSON. Every message carries `"v": 1`.
///   request:  {"v":1,"id":7,"cmd":"status","args":{…}}
///   event:    {"v":1,"id":7,"event":"progress"|"log"|"step",…}   (zero or more, for streaming commands)
///   response: {"v":1,"id":7,"ok":true,"result":{…}}  or  {"v":1,"id":7,"ok":false,"error":{"code":"…","message":"…"}}
public enum ControlProtocol {
    public static let version = 1
    /// A request line longer than this is refused and the connection closed.
    public static let maxLineBytes = 1 << 20

    public static func encode(_ object: [String: Any]) -> [UInt8] {
        var o = object
        o["v"] = version
        guard let data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return Array("{\"v\":1,\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"unencodable reply\"}}\n".utf8)
        }
        return Array(data) + [10]
    }

    public struct DecodeError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func decode(_ line: ArraySlice<UInt8>) throws -> [String: Any] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line), options: []) else {
            throw DecodeError(description: "malformed JSON")
        }
        guard let dict = obj as? [String: Any] else { throw DecodeError(description: "a message must be a JSON object") }
        if let v = dict["v"] as? Int, v != version {
            throw DecodeError(description: "protocol version \(v) is not supported (this daemon speaks v\(version)); run the same sagedev version as the daemon, or 'sagedev down' and 'sagedev up' to restart it")
        }
        return dict
    }

    public static func error(id: Any?, code: String, _ message: String) -> [String: Any] {
        ["id": id ?? NSNull(), "ok": false, "error": ["code": code, "message": message]]
    }
}
