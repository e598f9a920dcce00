-- Documents too large to hold in memory whole (issue 11: a bank file of a million lines runs
-- to a gigabyte, PostgreSQL's limit for one bytea value) are kept in pieces, in order: the
-- import writes them as it reads the file, and nothing ever needs the whole file in one
-- value. Such a document's raw_documents.content is empty ('': no real document is); its
-- bytes are its chunks joined in chunk order (gateway/store/documents.py reads them back).
CREATE TABLE document_chunks (
    tenant_id    text    NOT NULL,
    document_id  bigint  NOT NULL,
    chunk        integer NOT NULL CHECK (chunk >= 0),
    content      bytea   NOT NULL,
    PRIMARY KEY (tenant_id, document_id, chunk),
    FOREIGN KEY (tenant_id, document_id) REFERENCES raw_documents (tenant_id, document_id)
);
-- As raw_documents.content: out of line, uncompressed (see 0001).
ALTER TABLE document_chunks ALTER COLUMN content SET STORAGE EXTERNAL;
