"""The rollback suite's forger: a script that edits a copied backup set's manifest on the host
and seals it again (test_06: sets that are sound but no verified pre-update set; test_07: forged
sets that a restore must refuse)."""

import base64

FORGE_SCRIPT = '/root/forge.py'

# Runs on the host: python3 forge.py SET_DIR MODE STATE_DIR EDIT_JSON. Applies the edits, brings
# files[] sizes and checksums up to date (as a careful forger would), then seals the manifest:
# MODE "unkeyed" (the old sha256 scheme, which anyone can recompute), "other-key" (a key of
# the forger's own) or "host-key" (the host's real key: the forger has root on the host).
FORGE = r'''
import hashlib, hmac, io, json, os, secrets, sys, tarfile
directory, mode, state_dir, edit = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
path = os.path.join(directory, 'manifest.json')
m = json.load(open(path))
m['backup_id'] = os.path.basename(directory)
config = os.path.join(directory, m['config']['archive'])

def add_member(name, kind, data=b'', target=''):
    with tarfile.open(config, 'a', format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.mtime = 1700000000
        if kind == 'file':
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
        elif kind == 'dir':
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        else:
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            archive.addfile(info)
    entry = dict(path='/' + name, mode='%04o' % info.mode, uid=0, gid=0, mtime=info.mtime,
                 type={'file': 'file', 'dir': 'directory', 'symlink': 'symlink'}[kind])
    if kind == 'file':
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if kind == 'symlink':
        entry['target'] = target
    return entry

for step in edit:
    if step['op'] == 'reason':
        m['reason'] = step['value']
    elif step['op'] == 'unverified':
        m.pop('verified_at', None)
    elif step['op'] == 'member':
        entry = add_member(step['name'], step['kind'], step.get('data', '').encode(), step.get('target', ''))
        if step.get('listed', True):
            m['config']['entries'].append(entry)
    elif step['op'] == 'config_path':
        m['config']['paths'].append(step['value'])

for entry in m['files']:
    full = os.path.join(directory, entry['path'])
    data = open(full, 'rb').read()
    entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
m.pop('seal', None)
m.pop('manifest_sha256', None)
body = json.dumps(m, sort_keys=True, separators=(',', ':')).encode('utf-8')
if mode == 'unkeyed':
    m['manifest_sha256'] = hashlib.sha256(body).hexdigest()
else:
    key = (bytes.fromhex(open(os.path.join(state_dir, 'seal.key')).read().strip()) if mode == 'host-key'
           else secrets.token_bytes(32))
    m['seal'] = dict(algorithm='hmac-sha256',
                     key_id=hashlib.sha256(b'microimpuls.micropvr seal key id\n' + key).hexdigest()[:16],
                     hmac=hmac.new(key, body, hashlib.sha256).hexdigest())
json.dump(m, open(path, 'w'), indent=2, sort_keys=True)
'''


def install_forge(host):
    """Put FORGE on ``host`` as FORGE_SCRIPT."""
    host.check_output('echo %s | base64 -d > %s', base64.b64encode(FORGE.encode('utf-8')).decode('ascii'), FORGE_SCRIPT)
