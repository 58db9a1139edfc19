package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;

/**
 * The repository's {@code config} object: the first thing read when a repository is opened and the
 * last thing written when it is created, so a location with a config holds a whole repository.
 */
final class ConfigObject {

    private ConfigObject() {}

    /** Whether {@code target} holds a repository (its config exists). */
    static boolean exists(ObjectTarget target) {
        return target.exists(ObjectKeys.CONFIG);
    }

    /**
     * Writes {@code config} unless the location already has one; the existing one wins a race.
     *
     * @return whether this call wrote it
     */
    static boolean putIfAbsent(ObjectTarget target, RepositoryConfig config) {
        return target.putIfAbsent(ObjectKeys.CONFIG, config.toBytes());
    }

    /**
     * The config of the repository at {@code target}.
     *
     * @throws PermanentException when there is none, saying how to create one
     * @throws io.tidemark.core.CorruptObjectException when it cannot be parsed
     */
    static RepositoryConfig read(ObjectTarget target) {
        return find(target)
                .orElseThrow(() -> new PermanentException("no Tidemark repository at " + target.describe()
                        + ": it has no '" + ObjectKeys.CONFIG + "' object. Check the location, or let a backup"
                        + " create the repository there"));
    }

    /**
     * The config of the repository at {@code target}, or empty when the location has none: one read.
     *
     * @throws io.tidemark.core.CorruptObjectException when it cannot be parsed
     */
    static java.util.Optional<RepositoryConfig> find(ObjectTarget target) {
        return target.get(ObjectKeys.CONFIG).map(bytes -> RepositoryConfig.parse(ObjectKeys.CONFIG, bytes));
    }
}
