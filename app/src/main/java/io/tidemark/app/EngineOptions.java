package io.tidemark.app;

import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.PassphraseSource;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The options by which offline commands ({@code status}, {@code prune}) find the engine's
 * repositories and policies: the engine config, overridden by {@code --data} and {@code --policies}.
 */
final class EngineOptions {

    static final Path DEFAULT_DATA = Path.of("tidemark-data");
    static final Path DEFAULT_POLICIES = Path.of("policies");

    @Option(names = "--config", description = "engine config YAML (targets, data, policies)")
    Path config;

    @Option(names = "--data", description = "data directory holding the primary repository (default: ./tidemark-data)")
    Path data;

    @Option(names = "--policies", description = "policy directory (default: ./policies)")
    Path policies;

    @Mixin
    PassphraseOptions passphrase;

    /** Where the passphrase of encrypted repositories comes from. */
    PassphraseSource passphrases(EngineConfig c) {
        return passphrase.source(c);
    }

    /** The engine config with the flags applied. */
    EngineConfig engineConfig() {
        return (config != null ? EngineConfig.load(config) : EngineConfig.empty())
                .with(null, data, null, null, policies);
    }

    /** The primary repository's directory. */
    Path repository(EngineConfig c) {
        return (c.data() != null ? c.data() : DEFAULT_DATA).resolve("repo");
    }

    /** The policies, parsed; a malformed one is a {@link io.tidemark.policies.PolicyException}. */
    PolicySet policies(EngineConfig c) {
        return new PolicyParser().loadDirectory(c.policies() != null ? c.policies() : DEFAULT_POLICIES);
    }
}
