package io.tidemark.testkit;

import io.tidemark.core.target.ObjectTarget;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A target that passes each call of the port's own methods to another target: a test extends it
 * and overrides only the calls it watches or changes. The interface's default methods ({@code
 * putIfAbsentDeferred}, {@code flush}, {@code read}, {@code retainUntil}, {@code as}) are not
 * forwarded: they keep their defaults, built on the forwarded calls, so an override of {@link #get}
 * also sees what {@code read} fetches and one of {@link #putIfAbsent} every deferred put.
 */
public abstract class ForwardingObjectTarget implements ObjectTarget {

    private final ObjectTarget delegate;

    protected ForwardingObjectTarget(ObjectTarget delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** The target the calls go to. */
    protected final ObjectTarget delegate() {
        return delegate;
    }

    @Override
    public String describe() {
        return delegate.describe();
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        return delegate.putIfAbsent(key, data);
    }

    @Override
    public Optional<byte[]> get(String key) {
        return delegate.get(key);
    }

    @Override
    public boolean exists(String key) {
        return delegate.exists(key);
    }

    @Override
    public List<String> list(String prefix) {
        return delegate.list(prefix);
    }

    @Override
    public void delete(String key) {
        delegate.delete(key);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
