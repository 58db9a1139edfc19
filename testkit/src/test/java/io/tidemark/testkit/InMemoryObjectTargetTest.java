package io.tidemark.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.contract.ObjectTargetContract;
import org.junit.jupiter.api.Test;

class InMemoryObjectTargetTest extends ObjectTargetContract {

    @Override
    protected ObjectTarget newTarget() {
        return new InMemoryObjectTarget("contract");
    }

    @Test
    void failNextFailsExactlyTheNextCallsAndLeavesObjectsAlone() {
        InMemoryObjectTarget fake = (InMemoryObjectTarget) target;
        fake.putIfAbsent("a", new byte[] {1});
        fake.failNext(2, () -> new RetriableException("injected"));

        assertThatThrownBy(() -> fake.putIfAbsent("b", new byte[] {2}))
                .isInstanceOf(RetriableException.class)
                .hasMessage("injected");
        assertThatThrownBy(() -> fake.get("a")).isInstanceOf(RetriableException.class);

        assertThat(fake.pendingFailures()).isZero();
        assertThat(fake.get("a")).isPresent();
        assertThat(fake.keys()).containsExactly("a");
    }
}
