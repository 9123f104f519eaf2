/**
 * Reading adapter configs from JSON with errors that name the file and the field, the value checks
 * every config builder shares ({@link org.peft4j.core.config.Checks}), and the registry of PEFT
 * methods that {@code peft_type} dispatches to.
 */
package org.peft4j.core.config;
