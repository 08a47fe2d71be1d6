"""`pier configuration ...`: the compute profiles a node can run with."""

import typer

from pier.cli.context import OutputOpt, cli_state
from pier.cli.output import human_bytes, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Configurations: compute profiles for instances.")


@app.command("list")
def list_configurations(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List the configurations (vCPU, memory, GPUs) a node can use."""
    state = cli_state(ctx, output=output)
    configurations = state.client().configurations()
    if state.is_json:
        print_json({"configurations": configurations})
        return
    print_table(
        ("NAME", "VCPU", "MEMORY", "GPUS"),
        ((c.name, c.vcpu, human_bytes(c.memory_bytes), c.gpus) for c in configurations),
    )
