package io.tidemark.repository.maintenance;

import io.tidemark.core.target.ObjectTarget;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/** Wraps a target: runs hooks after each put and before each list, and answers {@code retainUntil} as told (Object Lock). */
final class Intercepting implements ObjectTarget {

    private final ObjectTarget inner;
    volatile Consumer<String> afterPut = key -> {};
    volatile Consumer<String> beforeList = prefix -> {};
    volatile Function<String, Optional<Instant>> locks = key -> Optional.empty();

    Intercepting(ObjectTarget inner) {
        this.inner = inner;
    }

    @Override
    public String describe() {
        return inner.describe();
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        boolean put = inner.putIfAbsent(key, data);
        afterPut.accept(key);
        return put;
    }

    @Override
    public Optional<byte[]> get(String key) {
        return inner.get(key);
    }

    @Override
    public boolean exists(String key) {
        return inner.exists(key);
    }

    @Override
    public List<String> list(String prefix) {
        beforeList.accept(prefix);
        return inner.list(prefix);
    }

    @Override
    public void delete(String key) {
        inner.delete(key);
    }

    @Override
    public Optional<Instant> retainUntil(String key) {
        return locks.apply(key);
    }

    @Override
    public void close() {
        inner.close();
    }
}
