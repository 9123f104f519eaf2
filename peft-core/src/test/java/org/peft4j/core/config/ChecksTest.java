package org.peft4j.core.config;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ChecksTest {

    @Test
    void aFailedCheckThrowsItsMessageAsItIs() {
        IllegalArgumentException e =
                assertThrows(
                        IllegalArgumentException.class,
                        () -> Checks.require(false, "r must be an integer > 0, got 0"));
        assertEquals("r must be an integer > 0, got 0", e.getMessage());
        assertDoesNotThrow(() -> Checks.require(true, "never thrown"));
    }
}
