/**
 * The {@code peft4j} command line (picocli): {@code generate}, {@code quickstart}, and, as they
 * land, {@code finetune}, {@code merge}, {@code eval} and {@code bench}. Results go to standard
 * output, logs and progress to standard error.
 */
package org.peft4j.cli;
