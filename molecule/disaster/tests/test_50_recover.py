"""A recovered onto B by restore_host.yml: the same versions, data row for row, configuration
identical, healthy, recorded; a second run changes nothing; another host's recovery is refused."""

import pytest

from disasterlib import (
    B, backup_ids, config_files, db_dump, external_rows, healthy, load_state, recap, run, versions)
from gatelib import history


@pytest.fixture(scope='module')
def lost():
    return load_state()


@pytest.fixture(scope='module')
def recovered(host_b, lost):
    result = run(B, 'restore_host.yml', micropvr_recover_host=lost['fqdn'])
    assert result.returncode == 0, result.output
    return result


def test_versions_are_those_of_a(host_b, lost, recovered):
    assert versions(host_b) == lost['versions']


def test_sqlite_row_for_row(host_b, lost, recovered):
    assert db_dump(host_b) == lost['sqlite']


def test_external_databases_row_for_row(host_b, lost, recovered):
    assert external_rows(host_b) == lost['rows']


def test_configuration_identical(host_b, lost, recovered):
    assert config_files(host_b) == lost['config']


def test_healthy(host_b, recovered):
    healthy(host_b)


def test_the_dependencies_came_from_the_apt_sources(host_b, recovered):
    # prepare removed nginx (micropvs: Depends: nginx); apt-get satisfy put it back.
    assert host_b.package('nginx').is_installed


def test_recovery_recorded(host_b, lost, recovered):
    event = history(host_b)[-1]
    assert event['event'] == 'recover'
    assert event['from_host'] == lost['fqdn'] and event['backup_id'] == lost['backup_id']
    assert event['to_versions'] == lost['versions']
    assert lost['backup_id'] in backup_ids(host_b)
    stats = recovered.stats['micropvr_recover'][B]
    assert stats['from_host'] == lost['fqdn'] and stats['changed'] is True


def test_second_run_changes_nothing(host_b, lost, recovered):
    before = dict(versions=versions(host_b), sqlite=db_dump(host_b), rows=external_rows(host_b),
                  config=config_files(host_b), sets=backup_ids(host_b))
    result = run(B, 'restore_host.yml', micropvr_recover_host=lost['fqdn'])
    assert result.returncode == 0, result.output
    assert recap(result, B)['changed'] == 0, result.output
    assert result.stats['micropvr_recover'][B]['changed'] is False
    assert before == dict(versions=versions(host_b), sqlite=db_dump(host_b), rows=external_rows(host_b),
                          config=config_files(host_b), sets=backup_ids(host_b))


def test_recovering_another_host_onto_b_is_refused(host_b, lost, recovered):
    before = dict(versions=versions(host_b), sqlite=db_dump(host_b), config=config_files(host_b),
                  sets=backup_ids(host_b), history=history(host_b))
    result = run(B, 'restore_host.yml', micropvr_recover_host='pvr-other.example.net')
    assert result.returncode != 0, result.output
    assert 'Refusing to recover pvr-other.example.net onto %s: it already runs MicroPVR' % B in result.output
    assert before == dict(versions=versions(host_b), sqlite=db_dump(host_b), config=config_files(host_b),
                          sets=backup_ids(host_b), history=history(host_b))
    healthy(host_b)
