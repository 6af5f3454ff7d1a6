"""The part of AnsibleModule that module_utils code uses, for unit tests of pure logic."""


class FailJson(BaseException):
    """Like AnsibleModule.fail_json's SystemExit: not caught by ``except Exception``."""

    def __init__(self, kwargs):
        super(FailJson, self).__init__(kwargs.get('msg'))
        self.kwargs = kwargs


class FakeModuleBase(object):
    """get_bin_path from a {name: path} map and fail_json raising FailJson; subclasses
    decide what run_command does."""

    bins = {}

    def get_bin_path(self, name, required=False, opt_dirs=None):
        path = self.bins.get(name)
        if path is None and required:
            self.fail_json(msg='Failed to find required executable "%s" in paths' % name)
        return path

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)
