"""Inputs and outputs: inline `content` (Snakemake sends its job script so), and `file://`
paths on the volume claim, which a later task reads back."""

from __future__ import annotations

import pytest
import tes

from tes_api import Service, shell, task, unique, wait_final

# Executors really running in their images, files through mounted volumes, container logs and
# exit codes: only a real kubelet does these (tests/real-node.sh); the simulated node runs commands
# on this machine and mounts nothing.
pytestmark = pytest.mark.real_node

CONTENT_LIMIT = 128 * 1024


def test_an_inline_input_is_written_before_the_first_executor(service: Service) -> None:
    # Arrange
    client = service.client()
    script = "#!/bin/sh\necho job script ran\n"
    sent = task(
        unique("inline"),
        [tes.Executor(image=service.image, command=["sh", "/tmp/run_snakemake.sh"], workdir="/tmp")],
        inputs=[tes.Input(path="/tmp/run_snakemake.sh", content=script)],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.state == "COMPLETE"
    assert done.logs[0].logs[0].stdout == "job script ran\n"


def test_an_inline_input_of_128_kib_arrives_whole(service: Service) -> None:
    # Arrange: the least the document asks a server to take
    client = service.client()
    content = ("x" * 1023 + "\n") * (CONTENT_LIMIT // 1024)
    sent = task(
        unique("inline-128k"),
        [tes.Executor(image=service.image, command=["wc", "-c", "/in/big.txt"])],
        inputs=[tes.Input(path="/in/big.txt", content=content)],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.state == "COMPLETE"
    assert done.logs[0].logs[0].stdout.split()[0] == str(CONTENT_LIMIT)


def test_an_output_is_logged_with_its_size_and_read_back_by_a_later_task(service: Service) -> None:
    # Arrange
    client = service.client()
    url = f"file://{service.volume()}/tes-tests/{unique('output')}/result.txt"
    writer = task(
        unique("writes"),
        [shell(service.image, "printf 'result 42\\n' > /out/result.txt")],
        outputs=[tes.Output(path="/out/result.txt", url=url)],
    )

    # Act
    written = wait_final(client, client.create_task(writer))
    reader = task(
        unique("reads"),
        [tes.Executor(image=service.image, command=["cat", "/in/result.txt"])],
        inputs=[tes.Input(path="/in/result.txt", url=url)],
    )
    read = wait_final(client, client.create_task(reader))

    # Assert
    assert written.state == "COMPLETE"
    assert [(output.url, output.path, output.size_bytes) for output in written.logs[0].outputs] == [
        (url, "/out/result.txt", len("result 42\n"))
    ]
    assert read.state == "COMPLETE"
    assert read.logs[0].logs[0].stdout == "result 42\n"


def test_outputs_matching_a_wildcard_are_each_logged(service: Service) -> None:
    # Arrange: as Nextflow sends an output pattern, a directory URL and a path_prefix
    client = service.client()
    directory = f"file://{service.volume()}/tes-tests/{unique('pattern')}"
    sent = task(
        unique("wildcard"),
        [shell(service.image, "cd /work && echo a > a.txt && echo bb > b.txt && echo c > c.log")],
        outputs=[tes.Output(path="/work/*.txt", path_prefix="/work", url=directory)],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    logged = sorted((output.url, output.size_bytes) for output in done.logs[0].outputs)
    assert logged == [(f"{directory}/a.txt", 2), (f"{directory}/b.txt", 3)]


def test_a_missing_input_on_the_volume_is_a_system_error_saying_which(service: Service) -> None:
    client = service.client()
    url = f"file://{service.volume()}/tes-tests/{unique('absent')}/nothing.txt"
    sent = task(
        unique("missing-input"),
        [tes.Executor(image=service.image, command=["cat", "/in/nothing.txt"])],
        inputs=[tes.Input(path="/in/nothing.txt", url=url)],
    )

    done = wait_final(client, client.create_task(sent))

    assert done.state == "SYSTEM_ERROR"
    assert any(url in line for line in done.logs[0].system_logs)
    assert done.logs[0].logs == []


def test_an_output_the_executors_did_not_write_is_said_in_system_logs(service: Service) -> None:
    # The executors succeeded; the engines check their own outputs (Nextflow its patterns,
    # Cromwell its rc file), so the task completes and says which output is missing.
    client = service.client()
    url = f"file://{service.volume()}/tes-tests/{unique('unwritten')}/never.txt"
    sent = task(
        unique("missing-output"),
        [shell(service.image, "true")],
        outputs=[tes.Output(path="/out/never.txt", url=url)],
    )

    done = wait_final(client, client.create_task(sent))

    assert done.state == "COMPLETE"
    assert done.logs[0].outputs == []
    assert any("/out/never.txt" in line for line in done.logs[0].system_logs)
