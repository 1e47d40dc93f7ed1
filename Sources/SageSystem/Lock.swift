import Glibc

/// A mutex for the few places where threads share state (probe workers posting results, output).
public final class Lock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    @inline(__always) public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// A value guarded by a lock.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withValue<T>(_ body: (inout Value) throws -> T) rethrows -> T { try lock.locked { try body(&value) } }
    public var current: Value { lock.locked { value } }
}
