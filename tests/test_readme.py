"""The README's code example runs as written."""

import os
import re

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'README.md')


def test_readme_python_example_runs():
  blocks = re.findall(r'```python\n(.*?)```', open(README).read(), re.S)
  assert blocks, 'README has no python example'
  namespace = {}
  exec(compile(blocks[0], 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert set(namespace['grads']) == {'params'}
  assert namespace['d_params'] is not None
