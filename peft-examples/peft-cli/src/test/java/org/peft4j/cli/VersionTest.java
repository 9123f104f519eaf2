package org.peft4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import org.junit.jupiter.api.Test;

/** {@code peft4j --version} prints the version the POM declares, which the build passes in. */
class VersionTest {

    @Test
    void theVersionOptionPrintsTheProjectVersionOfThePom() {
        String expected = System.getProperty("peft4j.project.version");
        assertNotNull(expected, "the build passes peft4j.project.version (see the root pom)");
        String[] result = CliRunner.run("--version");
        assertEquals("0", result[0], result[2]);
        assertEquals("peft4j " + expected + System.lineSeparator(), result[1]);
        assertEquals(expected, Version.get());
    }
}
