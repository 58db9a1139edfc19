package io.tidemark.cli;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.targets.TargetSpec;
import java.util.TreeSet;

/** Opens the target a DR plan restores from, by its name in the engine config. */
final class DrSources {

    private DrSources() {}

    static ObjectTarget open(EngineOptions engine, RecoveryPlan plan) {
        EngineConfig c = engine.engineConfig();
        TargetSpec tc = c.targets().get(plan.source());
        if (tc == null) {
            throw new PermanentException("plan " + plan.file() + " restores from target '" + plan.source()
                    + "', which the engine config does not define"
                    + (c.targets().isEmpty()
                            ? " (it defines no targets; pass --config)"
                            : "; it defines "
                                    + String.join(
                                            ", ", new TreeSet<>(c.targets().keySet()))));
        }
        return tc.open(plan.source());
    }
}
