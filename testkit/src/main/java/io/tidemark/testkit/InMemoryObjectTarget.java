package io.tidemark.testkit;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.core.target.TargetKeys;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.function.Supplier;

/**
 * The in-memory fake of {@link ObjectTarget}: thread-safe, exclusive {@link #putIfAbsent}, keys
 * validated like the real adapters (no empty, absolute, {@code .} or {@code ..} segments). Stored
 * and returned arrays are copies. It passes the same contract suite as every adapter.
 *
 * <p>For fault-injection tests, {@link #failNext(int, Supplier)} makes the next calls throw.
 */
public final class InMemoryObjectTarget implements ObjectTarget {

    private final String name;
    private final ConcurrentSkipListMap<String, byte[]> objects = new ConcurrentSkipListMap<>();
    private final Object faultLock = new Object();
    private int failuresLeft;
    private Supplier<? extends RuntimeException> fault;

    /** An empty target described as {@code memory://default}. */
    public InMemoryObjectTarget() {
        this("default");
    }

    /** An empty target described as {@code memory://<name>}. */
    public InMemoryObjectTarget(String name) {
        this.name = Objects.requireNonNull(name, "name");
    }

    /**
     * Makes the next {@code n} calls of {@link #putIfAbsent}, {@link #get}, {@link #exists}, {@link
     * #list} or {@link #delete} (from any thread) throw {@code fault.get()} without touching the
     * stored objects. Replaces any earlier setting; {@code n == 0} clears it.
     */
    public void failNext(int n, Supplier<? extends RuntimeException> fault) {
        if (n < 0) {
            throw new IllegalArgumentException("n must be >= 0, was " + n);
        }
        synchronized (faultLock) {
            this.failuresLeft = n;
            this.fault = Objects.requireNonNull(fault, "fault");
        }
    }

    /** How many injected failures are still to come. */
    public int pendingFailures() {
        synchronized (faultLock) {
            return failuresLeft;
        }
    }

    /** A snapshot of the stored keys, sorted. */
    public List<String> keys() {
        return new ArrayList<>(objects.keySet());
    }

    @Override
    public String describe() {
        return "memory://" + name;
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        maybeFail();
        checkKey(key);
        return objects.putIfAbsent(key, data.clone()) == null;
    }

    @Override
    public Optional<byte[]> get(String key) {
        maybeFail();
        checkKey(key);
        return Optional.ofNullable(objects.get(key)).map(byte[]::clone);
    }

    @Override
    public boolean exists(String key) {
        maybeFail();
        checkKey(key);
        return objects.containsKey(key);
    }

    @Override
    public List<String> list(String prefix) {
        maybeFail();
        Objects.requireNonNull(prefix, "prefix");
        List<String> keys = new ArrayList<>();
        for (Map.Entry<String, byte[]> entry : objects.tailMap(prefix, true).entrySet()) {
            if (!entry.getKey().startsWith(prefix)) {
                break;
            }
            keys.add(entry.getKey());
        }
        return keys;
    }

    @Override
    public void delete(String key) {
        maybeFail();
        checkKey(key);
        objects.remove(key);
    }

    /** Keeps the objects: a closed fake may be inspected and reused. */
    @Override
    public void close() {
        // nothing to release
    }

    @Override
    public String toString() {
        return describe();
    }

    private void maybeFail() {
        RuntimeException failure = null;
        synchronized (faultLock) {
            if (failuresLeft > 0) {
                failuresLeft--;
                failure = fault.get();
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    private void checkKey(String key) {
        TargetKeys.check(key, describe());
    }
}
