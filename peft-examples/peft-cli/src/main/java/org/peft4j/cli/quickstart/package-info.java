/**
 * The README's quickstart as a runnable program: the seed's five steps (config, wrap, train only
 * LoRA, save, load) on a small network that learns one task and is then adapted to another.
 */
package org.peft4j.cli.quickstart;
