import Glibc
import Dispatch
import CSageSystem

/// The controlling terminal for a full-screen view: its size, raw keyboard input, and the resize signal.
public enum Terminal {
    /// SIGWINCH: the terminal was resized.
    public static let resizeSignal = SIGWINCH

    /// Rows and columns of the terminal on `fd`, or nil when it is not a terminal.
    public static func size(_ fd: Int32 = 1) -> (rows: Int, columns: Int)? {
        let r = Int(csage_window_rows(fd)), c = Int(csage_window_columns(fd))
        return r > 0 && c > 0 ? (r, c) : nil
    }

    /// Puts the terminal on `fd` in raw mode (keys arrive one by one, unechoed, Ctrl-C as a byte) and returns
    /// what restores it; nil when `fd` is not a terminal.
    public static func enterRawMode(_ fd: Int32 = 0) -> RawMode? {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else { return nil }
        return RawMode(fd: fd, saved: saved)
    }
}

/// A terminal in raw mode; `restore` puts back the settings it had (once).
public final class RawMode: @unchecked Sendable {
    let fd: Int32
    var saved: termios
    private var restored = false
    init(fd: Int32, saved: termios) { self.fd = fd; self.saved = saved }
    public func restore() {
        guard !restored else { return }
        restored = true
        _ = tcsetattr(fd, TCSANOW, &saved)
    }
}
