package io.tidemark.repository.maintenance;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.ForwardingObjectTarget;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/** Wraps a target: runs hooks after each put and before each list, and answers {@code retainUntil} as told (Object Lock). */
final class Intercepting extends ForwardingObjectTarget {

    volatile Consumer<String> afterPut = key -> {};
    volatile Consumer<String> beforeList = prefix -> {};
    volatile Function<String, Optional<Instant>> locks = key -> Optional.empty();

    Intercepting(ObjectTarget inner) {
        super(inner);
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        boolean put = super.putIfAbsent(key, data);
        afterPut.accept(key);
        return put;
    }

    @Override
    public List<String> list(String prefix) {
        beforeList.accept(prefix);
        return super.list(prefix);
    }

    @Override
    public Optional<Instant> retainUntil(String key) {
        return locks.apply(key);
    }
}
