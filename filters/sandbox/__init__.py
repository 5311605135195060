"""The code sandbox: a zygote that clones one isolated process per program (namespaces, an
allowlisted read-only root, seccomp, cgroups, its own uid), and the trusted side that
talks to it. `runner.Sandbox` is the entry point; `check` is what `distillery doctor` runs."""
