package io.tidemark.engine;

import io.tidemark.core.InvalidInputException;
import java.util.Arrays;
import java.util.Collection;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What a {@code tidemark run} process does (ADR 13). One host runs every role; a fleet runs workers
 * on the hypervisor hosts and schedulers and replicators where the operator wants them.
 */
public enum Role {
    /** Quartz firing, RPO tracking over the fleet's inventory, the hooks, policy reload. */
    SCHEDULER,
    /** Capture and backup of this host's VMs, the inventory publisher, rollback of its VMs. */
    WORKER,
    /** Shipping to the targets (one consumer group per target, shared), reconciliation. */
    REPLICATOR;

    /** Its name in the config and on the command line. */
    public String spelling() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The roles named in {@code names} ({@code scheduler}, {@code worker}, {@code replicator}, or
     * {@code all}); every role when {@code names} is null or empty.
     *
     * @throws InvalidInputException naming an unknown role and the known ones
     */
    public static Set<Role> parse(Collection<String> names) {
        if (names == null || names.isEmpty()) {
            return EnumSet.allOf(Role.class);
        }
        EnumSet<Role> roles = EnumSet.noneOf(Role.class);
        for (String n : names) {
            String name = n.strip().toLowerCase(Locale.ROOT);
            if (name.equals("all")) {
                roles.addAll(EnumSet.allOf(Role.class));
                continue;
            }
            roles.add(Arrays.stream(values())
                    .filter(r -> r.spelling().equals(name))
                    .findFirst()
                    .orElseThrow(() -> new InvalidInputException("unknown role '" + n + "': expected "
                            + Arrays.stream(values()).map(Role::spelling).collect(Collectors.joining(", "))
                            + " or all")));
        }
        return roles;
    }
}
