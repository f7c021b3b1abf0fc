"""Executors run in order in one pod, each after the previous ended; the first non-zero exit
stops the task unless that executor says `ignore_error`. Redirections, `workdir` and `env` are
honoured, and each executor's exit code and times are in the task's log."""

from __future__ import annotations

import pytest
import tes

from tes_api import FINAL_STATES, Service, shell, task, unique, wait_final, wait_state

# Executors really running in their images, files through mounted volumes, container logs and
# exit codes: only a real kubelet does these (tests/real-node.sh); the simulated node runs commands
# on this machine and mounts nothing.
pytestmark = pytest.mark.real_node


def test_two_executors_pass_a_file_through_a_volume(service: Service) -> None:
    # Arrange
    client = service.client()
    sent = task(
        unique("volume"),
        [
            shell(service.image, "echo from-the-first > /shared/handover.txt"),
            shell(service.image, "cat /shared/handover.txt"),
        ],
        volumes=["/shared"],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.state == "COMPLETE"
    first, second = done.logs[0].logs
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert second.stdout == "from-the-first\n"
    assert first.end_time <= second.start_time


def test_stdin_and_stdout_are_redirected_to_the_paths_given(service: Service) -> None:
    # Arrange: the first executor counts the input's lines into a file the second prints
    client = service.client()
    sent = task(
        unique("redirect"),
        [
            tes.Executor(image=service.image, command=["wc", "-l"], stdin="/in/lines.txt", stdout="/out/count.txt"),
            shell(service.image, "tr -d ' ' < /out/count.txt"),
        ],
        inputs=[tes.Input(path="/in/lines.txt", content="one\ntwo\nthree\n")],
        volumes=["/out"],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.state == "COMPLETE"
    assert done.logs[0].logs[1].stdout == "3\n"
    assert done.logs[0].logs[0].stdout in (None, "")


def test_stderr_is_redirected_to_the_path_given(service: Service) -> None:
    client = service.client()
    sent = task(
        unique("stderr"),
        [
            shell(service.image, "echo to-stderr >&2", stderr="/out/err.txt"),
            shell(service.image, "cat /out/err.txt"),
        ],
        volumes=["/out"],
    )

    done = wait_final(client, client.create_task(sent))

    assert done.logs[0].logs[1].stdout == "to-stderr\n"


def test_a_failing_executor_gives_executor_error_with_its_exit_code_and_the_next_never_runs(service: Service) -> None:
    # Arrange
    client = service.client()
    sent = task(
        unique("fails"),
        [shell(service.image, "exit 3"), shell(service.image, "echo must-not-run")],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert: what Nextflow reads, logs[0].logs[0].exit_code
    assert done.state == "EXECUTOR_ERROR"
    assert done.logs[0].logs[0].exit_code == 3
    assert len(done.logs[0].logs) == 1


def test_an_executor_with_ignore_error_lets_the_next_run_and_keeps_its_exit_code(service: Service) -> None:
    # Arrange
    client = service.client()
    sent = task(
        unique("ignore-error"),
        [shell(service.image, "exit 3", ignore_error=True), shell(service.image, "echo ran")],
    )

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.state == "COMPLETE"
    assert [log.exit_code for log in done.logs[0].logs] == [3, 0]
    assert done.logs[0].logs[1].stdout == "ran\n"


def test_a_missing_program_is_an_executor_error_with_exit_code_127(service: Service) -> None:
    client = service.client()
    sent = task(unique("no-program"), [tes.Executor(image=service.image, command=["no-such-program-here"])])

    done = wait_final(client, client.create_task(sent))

    assert done.state == "EXECUTOR_ERROR"
    assert done.logs[0].logs[0].exit_code == 127


def test_workdir_and_env_are_those_of_the_executor(service: Service) -> None:
    client = service.client()
    sent = task(
        unique("workdir-env"),
        [shell(service.image, 'pwd; echo "$GREETING"', workdir="/tmp", env={"GREETING": "hello there"})],
    )

    done = wait_final(client, client.create_task(sent))

    assert done.logs[0].logs[0].stdout == "/tmp\nhello there\n"


def test_the_command_runs_as_argv_without_a_shell_in_between(service: Service) -> None:
    # Arrange: a word a shell would expand or split
    client = service.client()
    sent = task(unique("argv"), [tes.Executor(image=service.image, command=["echo", "$HOME  *  'quoted'"])])

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert
    assert done.logs[0].logs[0].stdout == "$HOME  *  'quoted'\n"


def test_an_image_that_cannot_be_pulled_is_a_system_error_saying_why(service: Service) -> None:
    # Arrange: an image the real node's registry does not have; the service gives up on a pod
    # stuck pending after its --pending-timeout (30 s for this test's service)
    client = service.client()
    sent = task(unique("unpullable"), [tes.Executor(image=service.missing_image, command=["true"])])

    # Act
    done = wait_final(client, client.create_task(sent))

    # Assert: the Kubernetes reason is in system_logs; no executor ran
    assert done.state == "SYSTEM_ERROR"
    assert any("ImagePull" in line or "ErrImagePull" in line for line in done.logs[0].system_logs)
    assert done.logs[0].logs == []


def test_a_task_is_running_while_its_first_executors_run_before_its_last_step(service: Service) -> None:
    # Arrange: two executors (init containers) and an output copied after them, so the pod's
    # own phase stays Pending until the copying step starts
    client = service.client()
    url = f"file://{service.volume()}/tes-tests/{unique('running')}/out.txt"
    sent = task(
        unique("running"),
        [shell(service.image, "sleep 6"), shell(service.image, "echo done > /out/out.txt")],
        outputs=[tes.Output(path="/out/out.txt", url=url)],
    )

    # Act
    task_id = client.create_task(sent)
    seen = wait_state(client, task_id, {"RUNNING", *FINAL_STATES})
    done = wait_final(client, task_id)

    # Assert
    assert seen == "RUNNING"
    assert done.state == "COMPLETE"
    assert done.logs[0].start_time <= done.logs[0].logs[0].start_time
