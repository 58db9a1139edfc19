package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import java.time.Duration;
import java.util.function.Function;

/**
 * What the builders of every {@link TargetSpec} share: one method per setting, named as the
 * setting is in the engine config (the config reader fills a builder key by key), and {@link
 * #build()}, which reports every problem at once ({@link TargetSpecException}).
 *
 * @param <B> the builder itself
 * @param <T> the spec it builds
 */
public abstract class TargetSpecBuilder<B extends TargetSpecBuilder<B, T>, T extends TargetSpec> {
    private Duration retryDeadline;
    private long bandwidthLimit;

    TargetSpecBuilder() {}

    /** {@code retryDeadline}; {@code null} for {@link TransferLimits#DEFAULT_RETRY_DEADLINE}. */
    public B retryDeadline(Duration retryDeadline) {
        this.retryDeadline = retryDeadline;
        return self();
    }

    /** {@code bandwidthLimit} in bytes per second; 0 for none. */
    public B bandwidthLimit(long bytesPerSecond) {
        this.bandwidthLimit = bytesPerSecond;
        return self();
    }

    /**
     * The spec.
     *
     * @throws TargetSpecException listing every problem of the settings
     */
    public abstract T build();

    /** {@code make} given the transfer limits; the problems of both reported together. */
    final T build(Function<TransferLimits, T> make) {
        TargetSpecException.Collector problems = new TargetSpecException.Collector();
        TransferLimits transfer = TransferLimits.DEFAULTS;
        try {
            transfer = new TransferLimits(retryDeadline, bandwidthLimit);
        } catch (PermanentException e) {
            problems.add(bandwidthLimit < 0 ? "bandwidthLimit" : "retryDeadline", e);
        }
        T spec = null;
        try {
            spec = make.apply(transfer);
        } catch (PermanentException e) {
            problems.add(null, e);
        }
        problems.check();
        return spec;
    }

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }
}
