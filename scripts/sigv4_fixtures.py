#!/usr/bin/env python3
"""Writes Tests/TidepoolS3Tests/Fixtures/sigv4.json: requests signed by botocore's S3SigV4Auth
(the AWS SDK's own signer) at a fixed time, with the canonical request, the string to sign and
the Authorization header it produced. Tidepool's signer must produce the same three, byte for byte.

    python3 scripts/sigv4_fixtures.py
"""
import base64, datetime, json, os
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

WHEN = datetime.datetime(2026, 11, 30, 23, 59, 58)
botocore.auth.get_current_datetime = lambda: WHEN

CASES = [
    # (name, method, url, headers, body, region, session token)
    ("get", "GET", "http://127.0.0.1:8333/bucket/db/collections/c/manifest/00000000000000000001", {}, b"", "us-east-1", None),
    ("ranged get", "GET", "http://127.0.0.1:8333/bucket/db/segments/000000000001.tps", {"Range": "bytes=0-4095"}, b"", "us-east-1", None),
    ("head", "HEAD", "http://localhost:9000/bucket/a%20b/c", {}, b"", "eu-west-1", None),
    ("create if absent", "PUT", "http://127.0.0.1:8333/bucket/db/wal/00000000000000000017",
     {"If-None-Match": "*", "Content-Type": "application/octet-stream", "x-amz-meta-commit-token": "6f1c2a"}, b"\x00\x01frames\xff", "us-east-1", None),
    ("compare and swap", "PUT", "http://127.0.0.1:8333/bucket/db/MANIFEST", {"If-Match": '"5d41402abc4b2a76b9719d911017c592"'}, b"hello", "us-west-2", None),
    ("list", "GET", "http://127.0.0.1:8333/bucket?list-type=2&prefix=db%2Fwal%2F&continuation-token=abc%2B%2F%3D&max-keys=1000", {}, b"", "us-east-1", None),
    ("list start-after", "GET", "http://127.0.0.1:8333/bucket?list-type=2&prefix=x&start-after=x%2F0001", {}, b"", "us-east-1", None),
    ("delete with session token", "DELETE", "https://s3.us-east-1.amazonaws.com/bucket/k~e_y-.txt", {}, b"", "us-east-1", "FQoGZXIvYXdzEXAMPLE//token+="),
    ("multipart create", "POST", "http://127.0.0.1:8333/bucket/db/seg?uploads", {}, b"", "us-east-1", None),
    ("multipart part", "PUT", "http://127.0.0.1:8333/bucket/db/seg?partNumber=2&uploadId=Xy%2Fz%3D%3D", {}, b"part-two" * 100, "us-east-1", None),
    ("multipart complete", "POST", "http://127.0.0.1:8333/bucket/db/seg?uploadId=Xy%2Fz%3D%3D",
     {"Content-Type": "application/xml"}, b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part></CompleteMultipartUpload>", "us-east-1", None),
    ("unicode key and spaces in a header", "GET", "http://127.0.0.1:8333/bucket/d%C3%A9j%C3%A0%20vu/%2A", {"X-Amz-Meta-Note": "  two   spaces  "}, b"", "ap-south-1", None),
]

class RecordingAuth(botocore.auth.S3SigV4Auth):
    """Keeps the canonical request and string to sign that signing used."""
    def string_to_sign(self, request, canonical_request):
        self.canonical = canonical_request
        self.to_sign = super().string_to_sign(request, canonical_request)
        return self.to_sign


out = []
for name, method, url, headers, body, region, token in CASES:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    auth = RecordingAuth(creds, "s3", region)
    auth.add_auth(req)
    out.append({
        "name": name, "method": method, "url": url, "headers": headers,
        "body": base64.b64encode(body).decode(), "region": region, "sessionToken": token,
        "accessKey": creds.access_key, "secretKey": creds.secret_key,
        "amzDate": WHEN.strftime("%Y%m%dT%H%M%SZ"),
        "canonicalRequest": auth.canonical,
        "stringToSign": auth.to_sign,
        "authorization": req.headers["Authorization"],
        "contentSHA256": req.headers["X-Amz-Content-SHA256"],
    })

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "TidepoolS3Tests", "Fixtures", "sigv4.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(out)} cases -> {os.path.normpath(path)}")
