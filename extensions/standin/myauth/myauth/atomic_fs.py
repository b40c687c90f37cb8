"""kombu's filesystem transport with atomic writes.

kombu 5.7 creates the message file, then locks and writes it; a consumer that lists the folder
in between moves away an empty file and the worker dies on a JSONDecodeError (seen here under
300 fast sends). Writing to a name no consumer matches and renaming it into place closes that
window. Used only when the stand-in runs without a broker server (MYAUTH_DATA_DIR).
"""

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = "{}_{}.{}.msg".format(int(round(monotonic() * 1000)), uuid.uuid4(), queue)
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # consumers match '<queue>.msg' exactly: never picked up
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.rename(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel
