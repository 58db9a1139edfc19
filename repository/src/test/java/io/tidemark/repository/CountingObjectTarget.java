package io.tidemark.repository;

import io.tidemark.core.target.ObjectTarget;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** Counts the objects read from a target, per key prefix ({@code chunks/}, {@code pages/}…). */
final class CountingObjectTarget implements ObjectTarget {

    private final ObjectTarget target;
    private final Map<String, AtomicLong> gets = new ConcurrentHashMap<>();

    CountingObjectTarget(ObjectTarget target) {
        this.target = target;
    }

    /** Reads of keys under {@code prefix} since the last {@link #reset}. */
    long gets(String prefix) {
        AtomicLong n = gets.get(prefix);
        return n == null ? 0 : n.get();
    }

    void reset() {
        gets.clear();
    }

    @Override
    public String describe() {
        return target.describe();
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        return target.putIfAbsent(key, data);
    }

    @Override
    public Optional<byte[]> get(String key) {
        int slash = key.indexOf('/');
        gets.computeIfAbsent(slash < 0 ? key : key.substring(0, slash + 1), k -> new AtomicLong())
                .incrementAndGet();
        return target.get(key);
    }

    @Override
    public boolean exists(String key) {
        return target.exists(key);
    }

    @Override
    public List<String> list(String prefix) {
        return target.list(prefix);
    }

    @Override
    public void delete(String key) {
        target.delete(key);
    }

    @Override
    public void close() {
        target.close();
    }
}
